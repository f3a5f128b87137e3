"""Small shared helpers: clock, time, phone numbers, crypto, ids, pagination."""

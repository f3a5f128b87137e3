"""A member's own data (SPEC X4): export everything Patron holds about them; erasure requests."""

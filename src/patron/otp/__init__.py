"""One-time sign-in codes sent by SMS: limits, hashing at rest, and the SMS channel interface."""

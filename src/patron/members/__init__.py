"""Members: registration, profile, consent, tags (SPEC M1-M3)."""

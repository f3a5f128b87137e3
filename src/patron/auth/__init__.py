"""Staff users, roles, API keys and the principal every request runs as."""

"""Messages to members: channels, templates, the durable send queue and delivery."""

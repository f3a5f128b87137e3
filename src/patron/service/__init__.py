"""The service desk: tickets with SLA targets, points disputes, a knowledge base and surveys."""

"""The n8n bridge: n8n-shaped routes over the connector (built in its own issue)."""

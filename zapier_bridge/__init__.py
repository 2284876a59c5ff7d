"""The Zapier bridge: Zapier-shaped routes over the connector (built in its own issue)."""

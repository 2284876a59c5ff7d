"""The n8n bridge: the connector's operations in the shapes n8n expects, at ``/n8n``."""

from .routes import blueprint

__all__ = ["blueprint"]

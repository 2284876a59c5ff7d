"""The Zapier bridge: the connector's operations in the shapes Zapier expects, at ``/zapier``."""

from .routes import blueprint

__all__ = ["blueprint"]

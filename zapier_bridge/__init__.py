"""The Zapier bridge: the connector's capabilities in the shapes Zapier expects, at ``/zapier``,
and the Zapier app that calls them (``templateto-bridge export zapier``)."""

from connector.platforms import Platform
from connector.webhooks.delivery import Receivers

from .export import export_command
from .routes import PLATFORM as NAME
from .routes import blueprint, delivered_item

PLATFORM = Platform(NAME, Receivers(payload=delivered_item), blueprint, export_command)

__all__ = ["PLATFORM"]

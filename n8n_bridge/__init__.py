"""The n8n bridge: the connector's capabilities in the shapes n8n expects, at ``/n8n``, and the
community node package that calls them (``templateto-bridge export n8n``)."""

from connector.platforms import Platform
from connector.webhooks.delivery import Receivers

from .export import export_command
from .routes import PLATFORM as NAME
from .routes import blueprint, delivered_item

# n8n answers 404 once the workflow behind a webhook is deactivated: the subscription is gone.
PLATFORM = Platform(
    NAME,
    Receivers(payload=delivered_item, not_found_means_gone=True),
    blueprint,
    export_command,
)

__all__ = ["PLATFORM"]

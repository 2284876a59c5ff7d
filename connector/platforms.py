"""A platform as the connector assembles it: its name (as a hook records it), how its webhook
receivers are spoken to, and, for the platform bridges, their routes and export command. Each
bridge describes itself with one; ``app.platforms()`` is the one place that gathers them, for the
app and for the delivery worker alike."""

from __future__ import annotations

from dataclasses import dataclass

import click
from flask_openapi3 import APIBlueprint

from .webhooks.delivery import Receivers


@dataclass(frozen=True)
class Platform:
    name: str
    receivers: Receivers
    blueprint: APIBlueprint | None = None
    export: click.Command | None = None


# The core API's own subscribers (POST /v1/hooks): the event as GET /v1/events lists it.
API = Platform("api", Receivers())

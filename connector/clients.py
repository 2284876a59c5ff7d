"""Which platform made a request, from its User-Agent: for failure reports and statistics."""

from __future__ import annotations

import enum


class Client(enum.StrEnum):
    ZAPIER = "zapier"
    N8N = "n8n"
    OTHER = "other"


def classify(user_agent: str | None) -> Client:
    """Zapier's runtime sends ``Zapier``; n8n sends ``n8n`` on credential-based requests."""
    agent = (user_agent or "").lower()
    if "zapier" in agent:
        return Client.ZAPIER
    if "n8n" in agent:
        return Client.N8N
    return Client.OTHER

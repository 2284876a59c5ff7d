"""``POST /v1/secret-scanning/github``: GitHub's secret scanning partner endpoint. GitHub finds
``tt_live_`` values pushed to public repositories and sends them here, signed; each one that
works is a leak (:mod:`connector.leaks`). GitHub has no API key: the signature is the
authentication, checked before anything else, and no key refusal is counted."""

from __future__ import annotations

import enum

from flask import Response, jsonify, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field, RootModel

from .. import keys
from ..audit import Actor, Via
from ..leaks import LeakSource
from ..secret_scanning import KEY_IDENTIFIER_HEADER, SIGNATURE_HEADER, parse_matches
from ..services import services
from .errors import KEY_ROUTE_ERRORS

# Who reported a leak, in the audit log.
GITHUB = "GitHub secret scanning"

blueprint = APIBlueprint(
    "secret_scanning",
    __name__,
    url_prefix="/v1/secret-scanning",
    abp_tags=[
        Tag(
            name="Secret scanning",
            description="For GitHub's secret scanning partner program: signed by GitHub, no "
            "API key.",
        )
    ],
    # The errors of every route, in the same shape (401: a refused signature).
    abp_responses=KEY_ROUTE_ERRORS,
)


class Label(enum.StrEnum):
    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"


class MatchLabel(BaseModel):
    token_hash: str = Field(description="The SHA-256 (hex) of the token.")
    token_type: str
    label: Label = Field(
        description="true_positive: the value works (a key's current value, or an old one in "
        "its grace period); false_positive: anything else."
    )


class MatchLabels(RootModel[list[MatchLabel]]):
    pass


@blueprint.post("/github", responses={200: MatchLabels})
def github_matches() -> Response:
    """Tokens GitHub found in public, as a JSON array of ``{"token", "type", "url",
    "source"}``, signed per GitHub's partner program. Each working value is marked leaked (and
    rolled, when the account's key policy says so); the answer labels each token."""
    body = request.get_data(cache=False)
    svc = services()
    svc.github_keys.verify(
        request.headers.get(KEY_IDENTIFIER_HEADER), request.headers.get(SIGNATURE_HEADER), body
    )
    reporter = Actor(GITHUB, Via.API, request.remote_addr, request.headers.get("User-Agent"))
    labels = []
    # A token found in several places is one leak, labelled alike: once rolled by the first,
    # it would no longer work for the second.
    works: dict[str, bool] = {}
    for match in parse_matches(body):
        digest = keys.fingerprint(match.token)
        if digest not in works:
            works[digest] = _ours(match.token) and (
                svc.leaks.report(digest, match.url, LeakSource.GITHUB, reporter).works
            )
        label = Label.TRUE_POSITIVE if works[digest] else Label.FALSE_POSITIVE
        labels.append(MatchLabel(token_hash=digest, token_type=match.type, label=label))
    return jsonify([label.model_dump(mode="json") for label in labels])


def _ours(token: str) -> bool:
    """Shaped like our keys, with a matching checksum: only such a token is looked up."""
    return keys.diagnose(token) is None and keys.checksum_matches(token)

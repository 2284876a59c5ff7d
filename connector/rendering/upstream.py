"""HTML to PDF by an upstream TemplateTo-compatible API (``POST /render/pdf/fromhtml``), for
deployments that keep the heavy conversion off their own machines.

Timeouts on every call; retries (bounded, with back-off) only on 5xx answers and failed
connections. The upstream's errors become ours: its 401 is *our* 502, since the bridge's own
upstream key is wrong, never the user's."""

from __future__ import annotations

import base64

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import (
    PdfConversionFailed,
    UpstreamError,
    UpstreamKeyRefused,
    UpstreamTimeout,
    UpstreamUnavailable,
)

CONNECT_SECONDS = 5.0
READ_SECONDS = 60.0
RETRIES = 2
USER_AGENT = "templateto-bridge"


class UpstreamPdfConverter:
    def __init__(
        self, base_url: str, api_key: str, session: requests.Session | None = None
    ) -> None:
        self._url = base_url.rstrip("/") + "/render/pdf/fromhtml"
        self._api_key = api_key
        self._session = session or requests.Session()
        retry = Retry(
            total=RETRIES,
            connect=RETRIES,
            read=0,  # the upstream may have started rendering: a read timeout is not retried
            status=RETRIES,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=None,  # POST too: converting HTML has no side effect upstream
            backoff_factor=0.25,
            raise_on_status=False,
            # An upstream's Retry-After could hold a worker for hours.
            respect_retry_after_header=False,
        )
        self._session.mount(self._url, HTTPAdapter(max_retries=retry))

    def convert(self, html: str) -> bytes:
        try:
            response = self._session.post(
                self._url,
                json={"base64HtmlString": base64.b64encode(html.encode("utf-8")).decode("ascii")},
                headers={"X-Api-Key": self._api_key, "User-Agent": USER_AGENT},
                timeout=(CONNECT_SECONDS, READ_SECONDS),
                allow_redirects=False,
            )
        except requests.Timeout:
            raise UpstreamTimeout(
                f"The upstream renderer did not answer within {READ_SECONDS:g} seconds. "
                "Retry later."
            ) from None
        except requests.RequestException as error:
            raise UpstreamUnavailable(
                f"The upstream renderer cannot be reached ({type(error).__name__}). Retry later."
            ) from None
        return self._content(response)

    @staticmethod
    def _content(response: requests.Response) -> bytes:
        status = response.status_code
        if status == 200 and response.content.startswith(b"%PDF"):
            return response.content
        if status in (401, 403):
            raise UpstreamKeyRefused(
                "The upstream renderer refused this service's own key "
                "(BRIDGE_RENDER_UPSTREAM_KEY). Your API key is fine: the service's operator "
                "must update the upstream key."
            )
        if status == 429:
            raise UpstreamUnavailable(
                "The upstream renderer is limiting this service's requests (HTTP 429). Retry later."
            )
        if status in (404, 405):
            raise UpstreamError(
                f"The upstream renderer has no HTML-to-PDF endpoint at its address (HTTP "
                f"{status}). The service's operator must check BRIDGE_RENDER_UPSTREAM_URL."
            )
        if 400 <= status < 500:
            raise PdfConversionFailed(
                f"The upstream renderer could not convert the HTML (HTTP {status}: "
                f"{_upstream_message(response)}). Check the template's markup."
            )
        if status >= 500:
            raise UpstreamUnavailable(
                f"The upstream renderer failed (HTTP {status}) after {RETRIES + 1} attempts. "
                "Retry later."
            )
        raise UpstreamError(f"The upstream renderer answered unexpectedly (HTTP {status}).")


def _upstream_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or "no details"
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else body.get("message")
        if isinstance(message, str):
            return message[:200]
    return "no details"

"""The baseline of ``benchmarks.throughput``: a bare Flask route answering the same JSON as
``GET /v1/me``, under gunicorn with exactly ``templateto-bridge serve``'s options.

    python -m benchmarks.bare_app --port 8001 --workers 2 --threads 8

The options are not copied: ``connector.serving.serve`` builds them and starts its
``BridgeServer``, here swapped for one that loads this app instead of ours.
"""

from __future__ import annotations

import argparse
from typing import Any

from flask import Flask

from connector import serving
from connector.config import load_settings

MARKER = "bare Flask"
ME = {"account_id": "acc_4d9rQm2Xk7LwPz81vBnS", "account_name": MARKER,
      "key_id": "key_8hJk2LmN4pQr6sTu0vWx", "key_name": "Benchmark", "key_hint": "tt_live_…Ab3d",
      "permission": "standard", "key_created_at": "2026-11-20T10:03:00Z", "key_rolled_at": None,
      "label": f"{MARKER} · Benchmark"}  # fmt: skip

app = Flask(__name__)


@app.get("/v1/me")
def me() -> dict[str, Any]:
    return ME


class BareServer(serving.BridgeServer):
    def load(self) -> Any:
        return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for option in ("--port", "--workers", "--threads"):
        parser.add_argument(option, type=int, required=True)
    arguments = parser.parse_args()
    serving.BridgeServer = BareServer  # type: ignore[misc]  # serve() starts this name
    serving.serve(load_settings(), host="127.0.0.1", port=arguments.port,
                  workers=arguments.workers, threads=arguments.threads, deliver=False)  # fmt: skip

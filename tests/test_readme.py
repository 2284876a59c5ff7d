"""The README's quick start and shell examples, run as written against what `make run` serves.

The test lays out a directory as a clone looks after `make run` (the Makefile, the package, and
this test's own environment as `.venv`), runs `make run PORT=<a free port>` in it, then every
line of the README's ``sh`` blocks but the `make` ones, in that directory. Like a user, it puts
in each placeholder what was printed before: `tt_live_…` and `tpl_…` are the demo key and
invoice `make run` printed, `acc_…` and `key_…` the last ids a command printed, and port 8000
is the one served. A line that sets up the shell (`. …`, `export …`) holds for the lines after
it, as in a terminal. `make test` is the command that runs this test, so it is not run here.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pypdf import PdfReader

from .helpers import free_port

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
PLACEHOLDER = re.compile(r"\b(tt_live|tpl|acc|key)_…")
PRINTED_ID = re.compile(r"\b(acc|key)_[A-Za-z0-9]{20}\b")
NEW_PASSWORD = "a new demo password\n"

pytestmark = pytest.mark.skipif(
    sys.prefix == sys.base_prefix or not (shutil.which("make") and shutil.which("curl")),
    reason="needs make, curl and a virtual environment (as `make run` makes)",
)


def readme_commands() -> list[str]:
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line.strip() and not line.startswith("make ")]


def test_the_readme_has_the_quick_start_commands_and_the_examples_this_test_runs() -> None:
    text = README.read_text(encoding="utf-8")

    assert "\nmake run    #" in text and "\nmake test   #" in text
    assert len(readme_commands()) >= 8
    assert len(text.encode()) < 8 * 1024


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    clone = tmp_path / "templateto-bridge"
    clone.mkdir()
    for name in ("Makefile", "pyproject.toml", "connector"):
        (clone / name).symlink_to(ROOT / name)
    (clone / ".venv").symlink_to(sys.prefix)
    return clone


@pytest.fixture
def user_env() -> dict[str, str]:
    """A terminal's environment: no BRIDGE_ or TEMPLATETO_ settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "TEMPLATETO_"))}


@pytest.fixture
def make_run(clone: Path, user_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[int, str]]:
    """`make run PORT=…` in the clone, until it serves; its port and what it printed."""
    port = free_port()
    log = tmp_path / "make-run.log"
    with log.open("w") as out:
        # -o: the environment is there already; make must not set it up again.
        make = subprocess.Popen(
            ["make", "-o", ".venv/bin/.installed", "run", f"PORT={port}"],
            cwd=clone,
            env=user_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if make.poll() is not None:
                pytest.fail(f"make run exited with {make.returncode}:\n{log.read_text()}")
            try:
                requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            pytest.fail(f"make run did not serve:\n{log.read_text()}")
        yield port, log.read_text()
    finally:
        _stop_group(make)


def _stop_group(make: subprocess.Popen) -> None:
    """Stop make and what it started (it leads its own process group), as Ctrl-C would."""
    os.killpg(make.pid, signal.SIGTERM)
    make.wait(timeout=40)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        try:
            os.killpg(make.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(make.pid, signal.SIGKILL)


def _run(line: str, setup: list[str], clone: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", "-ec", "\n".join([*setup, line])],
        cwd=clone,
        env=env,
        input=NEW_PASSWORD,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.servers  # make run, as a user runs it
def test_the_readme_examples_work_as_written(make_run, clone, user_env) -> None:
    port, printed = make_run
    served = f"http://127.0.0.1:{port}"
    values = {
        "tt_live": re.search(r"\n    (tt_live_\w+)\n", printed)[1],
        "tpl": re.search(r"Invoice (tpl_\w+)", printed)[1],
        "acc": re.search(r"Demo account 'Demo Ltd' \((acc_\w+)\)", printed)[1],
        "key": re.search(r"admin API key (key_\w+):", printed)[1],
    }
    # What make run printed leads to what it serves, not to port 8000.
    assert f"API keys page: {served}/generate/api-keys" in printed
    assert ":8000" not in printed
    printed_curl = re.search(r"^  (curl .*)$", printed, re.M)[1]
    _run(printed_curl, [], clone, user_env)
    assert "INV-2026-0042" in PdfReader(clone / "invoice.pdf").pages[0].extract_text()
    (clone / "invoice.pdf").unlink()

    outputs: dict[str, str] = {}
    setup: list[str] = []
    for command in readme_commands():
        line = PLACEHOLDER.sub(lambda found: values[found[1]], command)
        line = line.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        outputs[command] = _run(line, setup, clone, user_env)
        assert '"error"' not in outputs[command], (line, outputs[command])
        if line.startswith((". ", "export ")):
            setup.append(line)
        values.update({found[1]: found[0] for found in PRINTED_ID.finditer(outputs[command])})

    def output_of(start: str) -> str:
        [output] = [out for command, out in outputs.items() if command.startswith(start)]
        return output

    assert output_of("templateto-bridge check").startswith("ok: ")
    assert '"label"' in output_of('curl -H "X-Api-Key: $TEMPLATETO_API_KEY" http')
    invoice = PdfReader(io.BytesIO((clone / "invoice.pdf").read_bytes())).pages[0].extract_text()
    assert "Invoice INV-2026-0042" in invoice and "450 EUR" in invoice  # the data fits
    assert "'Acme Ltd'" in output_of("templateto-bridge accounts create")
    assert "'Zapier production'" in output_of("templateto-bridge keys create")
    assert "tt_live_" in output_of("templateto-bridge keys roll")
    assert "New password set for admin@demo.example" in output_of("templateto-bridge users")

"""The shared-memory record of revocations: what every process of a machine reads on each
request, so that a roll answers only once no process can accept the old value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import event

from connector.errors import ConfigError
from connector.revocations import SLOTS, RevocationSignal

from .helpers import key_header


def test_processes_mapping_one_directory_see_each_others_revocations(tmp_path) -> None:
    rolling, serving = RevocationSignal(tmp_path), RevocationSignal(tmp_path)
    seen = serving.read()

    rolling.bump("key_A")
    rolling.bump("key_B")

    assert serving.revoked_since(seen) == (seen + 2, frozenset({"key_A", "key_B"}))
    assert (tmp_path / "revocations").stat().st_mode & 0o777 == 0o600
    assert tmp_path.stat().st_mode & 0o777 == 0o700


def test_a_process_too_far_behind_forgets_every_key(tmp_path) -> None:
    signal = RevocationSignal(tmp_path)
    seen = signal.read()
    for number in range(SLOTS + 1):
        signal.bump(f"key_{number}")

    assert signal.revoked_since(seen) == (seen + SLOTS + 1, None)


def test_a_roll_forgets_only_the_rolled_keys_cached_answers(client, services, account):
    rolled, other = (services.keys.create(account.id, name) for name in ("Rolled", "Other"))
    for key in (rolled, other):
        assert client.get("/v1/me", headers=key_header(key.value)).status_code == 200
    queries: list[str] = []
    event.listen(services.db.engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
    services.keys.roll(None, rolled.id)
    queries.clear()

    assert client.get("/v1/me", headers=key_header(other.value)).status_code == 200
    assert not [q for q in queries if "api_key_values" in q]  # still cached
    assert client.get("/v1/me", headers=key_header(rolled.value)).status_code == 401


@pytest.mark.parametrize("planted", ["symlink", "other mode"])
def test_a_runtime_directory_not_private_to_this_user_is_refused(tmp_path, planted) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    victim = tmp_path / "bridge.db"
    victim.write_bytes(b"SQLite format 3\0")
    if planted == "symlink":
        (runtime / "revocations").symlink_to(victim)
    else:
        runtime.chmod(0o777)

    with pytest.raises(ConfigError, match="BRIDGE_RUNTIME_DIR"):
        RevocationSignal(runtime)
    assert victim.read_bytes() == b"SQLite format 3\0"


def test_a_removed_runtime_directory_never_fails_a_roll(client, services, account, settings):
    key = services.keys.create(account.id, "Zapier production")
    assert client.get("/v1/me", headers=key_header(key.value)).status_code == 200
    runtime: Path = settings.runtime_dir
    for path in runtime.iterdir():
        path.unlink()
    runtime.rmdir()

    rolled = services.keys.roll(None, key.id)  # the bump still writes the unlinked mapping

    assert client.get("/v1/me", headers=key_header(key.value)).status_code == 401
    assert client.get("/v1/me", headers=key_header(rolled.value)).status_code == 200
    # The next poll maps a new file, which later processes (a CLI) share again.
    assert services.revocations.reattach_if_replaced()
    assert (runtime / "revocations").exists()
    assert os.stat(runtime / "revocations").st_uid == os.getuid()

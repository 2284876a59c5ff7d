"""Settings come from BRIDGE_* variables with sane defaults; bad values stop the service with a
message naming the variable."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from connector.config import Settings, load_settings
from connector.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in ("DATA_DIR", "DATABASE_URL", "PUBLIC_URL", "SECRET_KEY", "MAX_BODY_BYTES"):
        monkeypatch.delenv(f"BRIDGE_{name}", raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_put_sqlite_and_a_generated_secret_under_var(tmp_path) -> None:
    settings = load_settings()

    assert settings.data_dir == tmp_path / "var"
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'bridge.db'}"
    assert str(settings.public_url) == "http://127.0.0.1:8000/"
    assert settings.max_body_bytes == 1_000_000
    assert settings.audit_retention_days == 365
    secret_file = tmp_path / "var" / "secret_key"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert settings.secret_key.get_secret_value() == secret_file.read_text().strip()


def test_generated_secret_is_kept_across_starts() -> None:
    assert (
        load_settings().secret_key.get_secret_value()
        == load_settings().secret_key.get_secret_value()
    )


def test_environment_variables_are_read(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("BRIDGE_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("BRIDGE_DATABASE_URL", "postgresql://bridge@db.internal/bridge")
    monkeypatch.setenv("BRIDGE_PUBLIC_URL", "https://bridge.example.com")
    monkeypatch.setenv("BRIDGE_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("BRIDGE_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("BRIDGE_AUDIT_RETENTION_DAYS", "30")

    settings = load_settings()

    assert settings.data_dir == tmp_path / "elsewhere"
    assert settings.database_url == "postgresql+psycopg://bridge@db.internal/bridge"
    assert str(settings.public_url) == "https://bridge.example.com/"
    assert settings.secret_key.get_secret_value() == "s" * 40
    assert settings.max_body_bytes == 2048
    assert settings.audit_retention_days == 30
    assert not (tmp_path / "elsewhere" / "secret_key").exists()


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("BRIDGE_DATABASE_URL", "mysql://root@localhost/x", "sqlite:/// or postgresql://"),
        ("BRIDGE_DATABASE_URL", "not a url", "not a database URL"),
        ("BRIDGE_PUBLIC_URL", "bridge.example.com", "URL"),
        ("BRIDGE_SECRET_KEY", "short", "at least 32 characters"),
        ("BRIDGE_MAX_BODY_BYTES", "0", "greater than 0"),
        ("BRIDGE_MAX_BODY_BYTES", "lots", "integer"),
        ("BRIDGE_KEEPALIVE_SECONDS", "0", "greater than or equal to 1"),
        ("BRIDGE_AUDIT_RETENTION_DAYS", "0", "greater than or equal to 1"),
        ("BRIDGE_AUDIT_RETENTION_DAYS", "36501", "less than or equal to 36500"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(monkeypatch, variable, value, words) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as refused:
        load_settings()

    assert variable in str(refused.value)
    assert words in str(refused.value)


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 18080, "http://127.0.0.1:18080/"),
        ("0.0.0.0", 8080, "http://127.0.0.1:8080/"),
        ("::", 8080, "http://[::1]:8080/"),
        ("::1", 8000, "http://[::1]:8000/"),
        ("bridge.internal", 80, "http://bridge.internal/"),
    ],
)
def test_the_public_url_follows_where_serve_listens(host, port, url) -> None:
    assert str(load_settings(listen=(host, port)).public_url) == url


def test_bridge_public_url_wins_over_where_serve_listens(monkeypatch) -> None:
    monkeypatch.setenv("BRIDGE_PUBLIC_URL", "https://bridge.example.com")

    assert str(load_settings(listen=("0.0.0.0", 18080)).public_url) == (
        "https://bridge.example.com/"
    )


@pytest.mark.parametrize(
    ("environment", "advice"),
    [
        ({}, "Set BRIDGE_DATA_DIR to the directory that holds bridge.db"),
        ({"BRIDGE_DATA_DIR": "elsewhere"}, "Set BRIDGE_DATA_DIR"),
        ({"BRIDGE_DATABASE_URL": "sqlite:///other/bridge.db"}, "Check BRIDGE_DATABASE_URL"),
    ],
)
def test_a_missing_database_is_refused_where_one_is_required_creating_nothing(
    monkeypatch, tmp_path, environment, advice
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    where = tmp_path / environment.get("BRIDGE_DATA_DIR", "var") / "bridge.db"
    if "BRIDGE_DATABASE_URL" in environment:
        where = tmp_path / "other" / "bridge.db"

    with pytest.raises(ConfigError) as refused:
        load_settings(require_database=True)

    assert f"No database at {where}." in str(refused.value)
    assert advice in str(refused.value)
    assert "templateto-bridge init" in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_database_is_used_where_one_is_required(tmp_path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "bridge.db").touch()

    settings = load_settings(require_database=True)

    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'bridge.db'}"


def test_unwritable_data_dir_is_refused(monkeypatch, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("BRIDGE_DATA_DIR", str(blocker / "data"))

    with pytest.raises(ConfigError) as refused:
        load_settings()

    assert "BRIDGE_DATA_DIR" in str(refused.value)


def test_every_setting_is_in_the_deployment_guides_table() -> None:
    guide = (Path(__file__).parents[1] / "docs" / "deployment.md").read_text()
    first_cells = re.findall(r"^\| ([^|]*`BRIDGE_[^|]*)\|", guide, re.MULTILINE)
    documented = {name for cell in first_cells for name in re.findall(r"BRIDGE_[A-Z0-9_]+", cell)}

    assert documented == {f"BRIDGE_{name.upper()}" for name in Settings.model_fields}

"""Every way a key can be refused: a 401 with its own code and a message that says what to do,
never echoing the value."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from connector import keys
from connector.api_keys import IssuedApiKey
from connector.errors import AuthenticationFailed

from ..helpers import class_tree, key_header


def refusal(response) -> dict:
    assert response.status_code == 401, response.json
    assert response.is_json
    return response.json["error"]


def test_valid_key_authenticates(client, admin_key: IssuedApiKey) -> None:
    response = client.get("/v1/me", headers=key_header(admin_key.value))

    assert response.status_code == 200
    assert response.json["key_id"] == admin_key.id


def test_missing_header(client) -> None:
    error = refusal(client.get("/v1/me"))

    assert error["code"] == "api_key_missing"
    assert "X-Api-Key" in error["message"]


def test_empty_header_counts_as_missing(client) -> None:
    error = refusal(client.get("/v1/me", headers={"X-Api-Key": ""}))

    assert error["code"] == "api_key_missing"
    assert "empty" in error["message"]


@pytest.mark.parametrize(
    ("garble", "problem", "words"),
    [
        (lambda v: "{{bundle.authData.api_key}}", "placeholder", "placeholder"),
        (lambda v: " " + v, "whitespace", "spaces"),
        (lambda v: f'"{v}"', "quoted", "quotes"),
        (lambda v: "Bearer " + v, "bearer", "Bearer"),
        (lambda v: v[:-1], "wrong_length", "cut off"),
        (lambda v: "tt_test_" + v[8:], "wrong_prefix", "tt_live_"),
        (lambda v: v[:8] + "ä" * 38, "invalid_characters", "letters and digits"),
    ],
)
def test_malformed_keys_say_which_problem(
    client, admin_key: IssuedApiKey, garble, problem: str, words: str
) -> None:
    presented = garble(admin_key.value)

    error = refusal(client.get("/v1/me", headers={"X-Api-Key": presented}))

    assert error["code"] == "api_key_malformed"
    assert error["details"]["problem"] == problem
    assert words in error["message"]
    assert admin_key.value not in str(error)


def test_checksum_mismatch_is_refused_without_touching_storage(
    client, services, admin_key: IssuedApiKey
) -> None:
    value = admin_key.value
    mistyped = value[:20] + ("A" if value[20] != "A" else "B") + value[21:]
    statements: list[str] = []
    event.listen(services.db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    error = refusal(client.get("/v1/me", headers=key_header(mistyped)))

    assert error["code"] == "api_key_checksum_mismatch"
    assert "mistyped or truncated" in error["message"]
    assert statements == []


def test_unknown_key(client) -> None:
    never_issued = keys.generate()

    error = refusal(client.get("/v1/me", headers=key_header(never_issued)))

    assert error["code"] == "api_key_unknown"
    assert never_issued not in str(error)


def test_rolled_value_names_key_and_time(client, services, admin_key: IssuedApiKey) -> None:
    services.keys.roll(None, admin_key.id)

    error = refusal(client.get("/v1/me", headers=key_header(admin_key.value)))

    assert error["code"] == "api_key_rolled"
    assert "'Zapier production'" in error["message"]
    assert "rolled on 2026-11-20 10:03 UTC" in error["message"]
    assert "new value" in error["message"]
    assert error["details"]["key_id"] == admin_key.id
    assert admin_key.value not in str(error)


def test_deleted_value_names_key_and_time(client, services, clock, admin_key) -> None:
    clock.advance(hours=2)
    services.keys.delete(None, admin_key.id)

    error = refusal(client.get("/v1/me", headers=key_header(admin_key.value)))

    assert error["code"] == "api_key_deleted"
    assert "'Zapier production'" in error["message"]
    assert "deleted on 2026-11-20 12:03 UTC" in error["message"]
    assert admin_key.value not in str(error)


def test_old_values_are_recognisable_for_90_days_only(client, services, clock, admin_key) -> None:
    services.keys.roll(None, admin_key.id)
    clock.advance(days=89)
    assert refusal(client.get("/v1/me", headers=key_header(admin_key.value)))["code"] == (
        "api_key_rolled"
    )

    clock.advance(days=1)
    services.authenticator.forget(None)

    assert refusal(client.get("/v1/me", headers=key_header(admin_key.value)))["code"] == (
        "api_key_unknown"
    )


@pytest.mark.parametrize("parameter", ["api_key", "apiKey", "X-Api-Key", "token"])
def test_key_in_query_string_is_refused_and_points_to_the_header(
    client, admin_key: IssuedApiKey, parameter: str
) -> None:
    error = refusal(client.get(f"/v1/me?{parameter}={admin_key.value}"))

    assert error["code"] == "api_key_in_query"
    assert "X-Api-Key header" in error["message"]
    assert admin_key.value not in str(error)


def test_key_value_in_any_query_parameter_is_refused(client, admin_key) -> None:
    error = refusal(client.get(f"/v1/me?q={admin_key.value}", headers=key_header(admin_key.value)))

    assert error["code"] == "api_key_in_query"


# The refusal codes the README documents, one per reason.
DOCUMENTED_CODES = {
    "api_key_missing",
    "api_key_in_query",
    "api_key_malformed",
    "api_key_checksum_mismatch",
    "api_key_unknown",
    "api_key_rolled",
    "api_key_deleted",
}


def test_every_reason_has_a_documented_code() -> None:
    # Every class under AuthenticationFailed, groupings included; that each has a code of its
    # own is test_errors.py's test_each_error_class_has_a_code_of_its_own.
    tree = class_tree(AuthenticationFailed)

    assert {refusal.code for refusal in tree if "code" in vars(refusal)} == DOCUMENTED_CODES
    assert {refusal.status for refusal in tree} == {401}


header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=120,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(presented=st.one_of(header_text, header_text.map(lambda t: "tt_live_" + t)))
def test_arbitrary_header_values_never_give_a_500(client, presented: str) -> None:
    response = client.get("/v1/me", headers={"X-Api-Key": presented})

    assert response.status_code == 401
    assert response.json["error"]["code"] in DOCUMENTED_CODES


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(presented=st.text(max_size=200))
def test_authenticator_refuses_any_text_with_a_reason(services, presented: str) -> None:
    with pytest.raises(AuthenticationFailed) as refused:
        services.authenticator.authenticate(presented)

    assert refused.value.code in DOCUMENTED_CODES

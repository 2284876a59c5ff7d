"""The key format: what a generated value looks like, and how a bad one is diagnosed."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector import keys
from connector.keys import FormatProblem


def test_generated_value_has_prefix_length_alphabet_and_checksum() -> None:
    value = keys.generate()

    assert value.startswith("tt_live_")
    assert len(value) == 46
    assert set(value[8:]) <= set(string.ascii_letters + string.digits)
    assert keys.diagnose(value) is None
    assert keys.checksum_matches(value)


def test_generated_values_differ() -> None:
    assert len({keys.generate() for _ in range(1000)}) == 1000


def test_stored_form_is_a_sha256_and_a_hint_never_the_value() -> None:
    fresh = keys.NewKeyValue.generate()

    assert len(fresh.fingerprint) == 64
    assert fresh.value not in fresh.fingerprint
    assert keys.display_hint(fresh.last4) == "tt_live_…" + fresh.value[-4:]


@given(st.integers(min_value=8, max_value=45), st.sampled_from(keys.BASE62))
def test_any_single_character_change_breaks_the_checksum(position: int, replacement: str) -> None:
    value = keys.generate()
    mistyped = value[:position] + replacement + value[position + 1 :]

    if mistyped != value:
        assert not keys.checksum_matches(mistyped)


@pytest.mark.parametrize(
    ("garble", "problem"),
    [
        (lambda v: "", FormatProblem.EMPTY),
        (lambda v: "{{bundle.authData.api_key}}", FormatProblem.PLACEHOLDER),
        (lambda v: "={{$credentials.apiKey}}", FormatProblem.PLACEHOLDER),
        (lambda v: " " + v, FormatProblem.WHITESPACE),
        (lambda v: v + "\n", FormatProblem.WHITESPACE),
        (lambda v: f'"{v}"', FormatProblem.QUOTED),
        (lambda v: f"'{v}'", FormatProblem.QUOTED),
        (lambda v: "Bearer " + v, FormatProblem.BEARER),
        (lambda v: "sk_live_" + v[8:], FormatProblem.WRONG_PREFIX),
        (lambda v: v[:-1], FormatProblem.WRONG_LENGTH),
        (lambda v: v + "x", FormatProblem.WRONG_LENGTH),
        (lambda v: v[:30] + "-" + v[31:], FormatProblem.INVALID_CHARACTERS),
    ],
)
def test_diagnosis_names_the_problem(garble, problem: FormatProblem) -> None:
    value = keys.generate()
    presented = garble(value)

    assert keys.diagnose(presented) is problem
    assert value not in problem.value


@given(st.text(max_size=200))
def test_diagnosis_never_raises(presented: str) -> None:
    problem = keys.diagnose(presented)

    assert problem is None or isinstance(problem, FormatProblem)


def test_redact_replaces_everything_key_shaped_and_nothing_else() -> None:
    value = keys.generate()

    assert keys.redact(f"/v1/templates/{value}") == "/v1/templates/tt_live_[redacted]"
    assert keys.redact(f"a {value[:20]} b {value.upper()}") == (
        "a tt_live_[redacted] b tt_live_[redacted]"
    )
    assert keys.redact(f'"{value}"') == '"tt_live_[redacted]"'  # JSON stays JSON
    assert keys.redact(keys.redact(value)) == keys.REDACTED
    # Hints and the bare prefix are not key values.
    for kept in (keys.display_hint("abcd"), "tt_live_", "send tt_live_… in X-Api-Key"):
        assert keys.redact(kept) == kept

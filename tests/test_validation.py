"""The shared input helpers of :mod:`mtf_gym.validation`: override parsing and merging, error messages."""

from __future__ import annotations

import pytest

from mtf_gym.validation import merge_nested, must_be, parse_key_value


def test_merge_nested_merges_dicts_key_by_key_and_replaces_everything_else() -> None:
    base = {"a": 1, "user": {"segments": {"casual": 0.4, "social": 0.2}, "max_requests": 30}, "tags": [1, 2]}
    update = {"user": {"segments": {"social": 0.3}}, "tags": [3], "b": {"x": 1}}
    merged = merge_nested(base, update)
    assert merged == {"a": 1, "user": {"segments": {"casual": 0.4, "social": 0.3}, "max_requests": 30},
                      "tags": [3], "b": {"x": 1}}
    # Neither input is modified.
    assert base["user"]["segments"] == {"casual": 0.4, "social": 0.2} and base["tags"] == [1, 2]
    assert update == {"user": {"segments": {"social": 0.3}}, "tags": [3], "b": {"x": 1}}
    # A dict replaces a non-dict value, and a non-dict replaces a dict.
    assert merge_nested({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert merge_nested({"a": {"b": 2}}, {"a": 5}) == {"a": 5}


def test_parse_key_value_reads_toml_values_and_names_the_option_in_errors() -> None:
    assert parse_key_value("max_requests=20") == ("max_requests", 20)
    assert parse_key_value(" user.noise = 0.5") == ("user.noise", 0.5)
    assert parse_key_value("tags=[1, 2]") == ("tags", [1, 2])
    assert parse_key_value("flag=True") == ("flag", True)
    assert parse_key_value("name=casual") == ("name", "casual")
    with pytest.raises(ValueError, match=r"--env expects KEY=VALUE \(an env field\), got 'oops'"):
        parse_key_value("oops", option="--env", hint="an env field")
    with pytest.raises(ValueError, match="expects KEY=VALUE"):
        parse_key_value("=3")


def test_must_be_names_owner_parameter_allowed_values_and_the_value() -> None:
    class RecipeConfig:
        pass

    assert str(must_be("sessions", "an integer >= 1", 0, owner=RecipeConfig)) == (
        "RecipeConfig.sessions must be an integer >= 1, got 0")
    assert str(must_be("sigma0", "> 0", -1.0)) == "sigma0 must be > 0, got -1.0"

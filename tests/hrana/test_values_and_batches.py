"""The pure parts of the protocol: values, arguments, conditions, SQL splitting."""

from __future__ import annotations

import pytest

from edgestore.errors import ProtocolError
from edgestore.hrana.batch import check_batch, evaluate
from edgestore.hrana.sqltext import begin_kind, one_statement, split_statements
from edgestore.hrana.values import decode_args, decode_value, encode_value


@pytest.mark.parametrize(
    "value",
    [None, 0, -1, 2**53 + 1, 2**63 - 1, -(2**63), 1.5, -0.25, "", "héllo", b"", b"\x00\xff" * 7],
)
def test_values_round_trip(value: object) -> None:
    assert decode_value(encode_value(value)) == value  # type: ignore[arg-type]


def test_integers_are_decimal_strings_and_blobs_unpadded() -> None:
    assert encode_value(2**63 - 1) == {"type": "integer", "value": "9223372036854775807"}
    assert encode_value(b"ab") == {"type": "blob", "base64": "YWI"}
    # Both paddings are accepted on the way in.
    assert decode_value({"type": "blob", "base64": "YWI="}) == b"ab"
    assert decode_value({"type": "blob", "base64": "YWI"}) == b"ab"


def test_lenient_spellings_of_a_popular_client() -> None:
    """django-libsql-backend sends floats as type "real" and blobs under "value"."""
    assert decode_value({"type": "real", "value": 1.5}) == 1.5
    assert isinstance(decode_value({"type": "real", "value": 2}), float)
    assert decode_value({"type": "blob", "value": "YWI="}) == b"ab"
    # The standard key wins when both are there.
    assert decode_value({"type": "blob", "base64": "YWI", "value": "eHl6"}) == b"ab"


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "integer", "value": "12x"},
        {"type": "integer", "value": str(2**63)},
        {"type": "blob", "base64": "%%%"},
        {"type": "blob", "value": "%%%"},
        {"type": "blob", "value": 3},
        {"type": "blob"},
        {"type": "real", "value": "x"},
        {"type": "real", "value": True},
        {"type": "text", "value": 3},
        {"type": "bogus"},
        "not an object",
    ],
)
def test_bad_values_are_args_invalid(bad: object) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_value(bad)
    assert info.value.code == "ARGS_INVALID"


def test_named_args_with_or_without_prefix() -> None:
    args = decode_args(
        {
            "named_args": [
                {"name": ":a", "value": {"type": "integer", "value": "1"}},
                {"name": "$b", "value": {"type": "null"}},
                {"name": "c", "value": {"type": "text", "value": "x"}},
            ]
        }
    )
    assert args == {"a": 1, "b": None, "c": "x"}
    with pytest.raises(ProtocolError) as info:
        decode_args(
            {
                "args": [{"type": "null"}],
                "named_args": [{"name": "a", "value": {"type": "null"}}],
            }
        )
    assert info.value.code == "ARGS_BOTH_POSITIONAL_AND_NAMED"


def test_conditions() -> None:
    steps = check_batch(
        {
            "steps": [
                {"stmt": {"sql": "a"}},
                {"stmt": {"sql": "b"}, "condition": {"type": "ok", "step": 0}},
                {"stmt": {"sql": "c"}, "condition": {"type": "error", "step": 0}},
                {
                    "stmt": {"sql": "d"},
                    "condition": {
                        "type": "and",
                        "conds": [
                            {"type": "not", "cond": {"type": "ok", "step": 2}},
                            {"type": "or", "conds": [{"type": "is_autocommit"}]},
                        ],
                    },
                },
            ]
        }
    )
    outcomes = [True, None, None, None]
    assert evaluate(steps[1]["condition"], outcomes, True)
    assert not evaluate(steps[2]["condition"], outcomes, True)
    # A skipped step is neither ok nor error.
    assert evaluate(steps[3]["condition"], outcomes, True)
    assert not evaluate(steps[3]["condition"], outcomes, False)


@pytest.mark.parametrize(
    "cond",
    [{"type": "ok", "step": 1}, {"type": "ok", "step": -1}, {"type": "maybe"}, {"type": "not"}],
)
def test_conditions_may_only_look_back(cond: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        check_batch({"steps": [{"stmt": {"sql": "a"}}, {"stmt": {"sql": "b"}, "condition": cond}]})


def test_split_statements_like_sqlite() -> None:
    script = """
        CREATE TABLE t(x TEXT); -- a comment; with a semicolon
        INSERT INTO t VALUES ('a;b');
        CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END;
        /* trailing */ ;
        SELECT 1"""
    parts = split_statements(script)
    assert len(parts) == 4
    assert "'a;b'" in parts[1]
    assert parts[2].strip().endswith("END;")
    assert parts[3].strip().endswith("SELECT 1")


def test_one_statement_codes() -> None:
    assert one_statement("SELECT 1;") == "SELECT 1;"
    with pytest.raises(ProtocolError) as info:
        one_statement("SELECT 1; SELECT 2")
    assert info.value.code == "SQL_MANY_STATEMENTS"
    with pytest.raises(ProtocolError) as info:
        one_statement("  -- nothing\n ; ")
    assert info.value.code == "SQL_NO_STATEMENT"


def test_begin_kinds() -> None:
    assert begin_kind("BEGIN TRANSACTION READONLY") == "readonly"
    assert begin_kind("begin immediate;") == "immediate"
    assert begin_kind("BEGIN") == "deferred"
    assert begin_kind("BEGIN EXCLUSIVE TRANSACTION") == "exclusive"
    assert begin_kind("SELECT 1") is None

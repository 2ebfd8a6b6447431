"""Statement parameters: checked before a connection is taken, and named when they are wrong.

apsw reports several binding problems as plain Python exceptions raised while binding, on a
connection the caller holds (``OverflowError`` for 2**64, ``KeyError`` for a missing name,
``TypeError`` for a list value, ``UnicodeEncodeError`` for a lone surrogate). ``check_params``
finds the cheap ones (count, names, types, the 64-bit range) before any connection is taken;
``bind_error`` turns whatever binding raised into a :class:`ParameterError` that names the
parameter, after the fact, for what the cheap check leaves out (text that is not valid Unicode).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import apsw

from ..errors import ParameterError
from .analysis import Analysis
from .results import Params

__all__ = ["I64_MAX", "I64_MIN", "bind_error", "check_params", "raise_bind_error"]

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1

# Types bound as they are; int is checked for its range, anything else by _check_value.
_PLAIN = frozenset({float, str, bytes, type(None)})
_ACCEPTED = (float, str, bytes, bytearray, memoryview, apsw.zeroblob)

_KINDS = "null, an integer, a real, text or a blob"


def check_params(analysis: Analysis, params: Params) -> None:
    """Raise ParameterError unless ``params`` bind to the statement of ``analysis``.

    Costs a type test per value (on every read: kept to a fast path for a list or tuple of
    plain values); text is not re-encoded (``bind_error`` finds a lone surrogate when binding
    fails). Extra names in a mapping are ignored, as SQLite does.
    """
    kind = type(params)
    if (kind is list or kind is tuple) and len(params) == len(analysis.params):  # type: ignore[arg-type]
        value: Any
        for value in params:  # type: ignore[union-attr]
            vtype = type(value)
            if vtype is int:
                if -9223372036854775808 <= value <= 9223372036854775807:
                    continue
            elif vtype in _PLAIN:
                continue
            break
        else:
            return
    _check_slowly(analysis.params, params)


def _check_slowly(names: tuple[str | None, ...], params: Params) -> None:
    if params is None:
        if names:
            raise _missing(names, 0, None)
        return
    if not isinstance(params, list | tuple):
        if isinstance(params, Mapping):
            _check_mapping(names, params)
            return
        if isinstance(params, str | bytes | bytearray | memoryview) or not isinstance(
            params, Sequence
        ):
            raise ParameterError(
                "parameters must be a list (positional) or a mapping (named), "
                f"not {type(params).__name__}",
                code="SQLITE_MISMATCH",
            )
    if len(params) != len(names):
        if len(params) < len(names):
            raise _missing(names, len(params), len(params))
        raise ParameterError(
            f"the statement takes {_count(len(names))}, {len(params)} were given",
            code="SQLITE_RANGE",
        )
    for index, value in enumerate(params):
        _check_value(value, _label(names, index))


def bind_error(analysis: Analysis, params: Params, exc: BaseException) -> BaseException:
    """What to raise for ``exc``, a non-apsw exception raised while running the statement:
    a ParameterError naming the parameter at fault, or ``exc`` itself when no parameter is."""
    try:
        check_params(analysis, params)
        _check_text(analysis.params, params)
    except ParameterError as err:
        err.__cause__ = exc
        return err
    return exc


def raise_bind_error(analysis: Analysis, params: Params, exc: BaseException) -> NoReturn:
    """Raise what ``bind_error`` chose (``exc`` unchanged when it is not a parameter's)."""
    err = bind_error(analysis, params, exc)
    if err is exc:
        raise exc
    raise err from exc


def _count(n: int) -> str:
    return "1 parameter" if n == 1 else f"{n} parameters"


def _label(names: tuple[str | None, ...], index: int) -> str:
    # Numbered parameters (?3) come back from the analysis as ':3'; show them as written.
    name = names[index] if index < len(names) else None
    if name is None or name[1:].isdigit():
        return f"?{index + 1}"
    return name


def _missing(names: tuple[str | None, ...], index: int, given: int | None) -> ParameterError:
    label = _label(names, index)
    if given is None:
        detail = f"no value for parameter {label}: the statement takes {_count(len(names))}"
    else:
        detail = (
            f"no value for parameter {label}: the statement takes {_count(len(names))}, "
            f"{given} {'was' if given == 1 else 'were'} given"
        )
    return ParameterError(detail, parameter=label, code="SQLITE_RANGE")


def _check_mapping(names: tuple[str | None, ...], params: Mapping[str, Any]) -> None:
    for index, name in enumerate(names):
        label = _label(names, index)
        if name is None:
            raise ParameterError(
                f"parameter {label} is positional: pass a list, not a mapping",
                parameter=label,
                code="SQLITE_RANGE",
            )
        key = name[1:]
        try:
            value = params[key]
        except KeyError:
            hint = f" (give the name without its {name[0]!r})" if name in params else ""
            raise ParameterError(
                f"no value for parameter {label}{hint}", parameter=label, code="SQLITE_RANGE"
            ) from None
        vtype = type(value)
        if vtype is int:
            if I64_MIN <= value <= I64_MAX:
                continue
        elif vtype in _PLAIN:
            continue
        _check_value(value, label)


def _check_value(value: object, label: str) -> None:
    if isinstance(value, int):  # bool and other int subclasses bind as integers
        if I64_MIN <= value <= I64_MAX:
            return
        raise ParameterError(
            f"parameter {label} is an integer of {value.bit_length()} bits, outside the "
            "signed 64-bit range SQLite stores (send it as text or a real)",
            parameter=label,
            code="SQLITE_MISMATCH",
        )
    if isinstance(value, _ACCEPTED):
        return
    raise ParameterError(
        f"parameter {label} has unsupported type {type(value).__name__}: give {_KINDS}",
        parameter=label,
        code="SQLITE_MISMATCH",
    )


def _check_text(names: tuple[str | None, ...], params: Params) -> None:
    if params is None:
        return
    if isinstance(params, Mapping):
        pairs = [(_label(names, i), params.get(n[1:])) for i, n in enumerate(names) if n]
    else:
        pairs = [(_label(names, i), v) for i, v in enumerate(params)]
    for label, value in pairs:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ParameterError(
                    f"parameter {label} is not valid Unicode text (an unpaired surrogate at "
                    f"character {exc.start})",
                    parameter=label,
                    code="SQLITE_MISMATCH",
                ) from None

"""Translate apsw exceptions (and apsw's strict text decoding) into the edgestore error tree,
in one place.

Every error keeps SQLite's extended result code name in ``code`` (``SQLITE_CONSTRAINT_UNIQUE``)
and the primary one in ``base_code`` (``SQLITE_CONSTRAINT``), and is raised ``from`` the apsw
exception so the original stays attached as ``__cause__``.
"""

from __future__ import annotations

import apsw

from ..errors import (
    ConstraintViolation,
    DatabaseBusyError,
    DatabaseError,
    EdgestoreError,
    InvalidTextError,
    NoSuchColumnError,
    NoSuchTableError,
    ParameterError,
    ReadOnlyError,
    SQLSyntaxError,
    StatementTimeout,
    StorageFault,
    StoreClosedError,
)

__all__ = ["code_names", "invalid_text", "translate"]

_BY_CLASS: dict[type[BaseException], type[DatabaseError]] = {
    apsw.ConstraintError: ConstraintViolation,
    apsw.BusyError: DatabaseBusyError,
    apsw.LockedError: DatabaseBusyError,
    apsw.ReadOnlyError: ReadOnlyError,
    apsw.InterruptError: StatementTimeout,
    # The file, the disk or memory failed: not the caller's statement.
    apsw.FullError: StorageFault,
    apsw.IOError: StorageFault,
    apsw.CorruptError: StorageFault,
    apsw.NoMemError: StorageFault,
    apsw.CantOpenError: StorageFault,
    apsw.NotADBError: StorageFault,
}

# SQLite reports these as plain SQLITE_ERROR; the message is the only distinction it offers.
_BY_MESSAGE: tuple[tuple[str, type[DatabaseError]], ...] = (
    ("no such table", NoSuchTableError),
    ("no such view", NoSuchTableError),
    ("no such column", NoSuchColumnError),
    ("syntax error", SQLSyntaxError),
    ("incomplete input", SQLSyntaxError),
    ("unrecognized token", SQLSyntaxError),
)


def code_names(exc: BaseException) -> tuple[str, str]:
    """``(extended code name, primary code name)`` of an apsw exception."""
    result = getattr(exc, "result", None)
    extended = getattr(exc, "extendedresult", None)
    base = apsw.mapping_result_codes.get(result, "SQLITE_ERROR") if result is not None else None
    if base is None:
        base = "SQLITE_RANGE" if isinstance(exc, apsw.BindingsError) else "SQLITE_ERROR"
    ext = apsw.mapping_extended_result_codes.get(extended, base) if extended is not None else base
    return str(ext), str(base)


def translate(exc: BaseException, *, timeout: bool = False) -> EdgestoreError:
    """The edgestore error for ``exc`` (already-translated errors pass through).

    ``timeout`` tells that an interrupt came from the statement time bound (as opposed to an
    explicit interrupt), which only changes the message.
    """
    if isinstance(exc, EdgestoreError):
        return exc
    if isinstance(exc, apsw.ConnectionClosedError | apsw.CursorClosedError):
        err: EdgestoreError = StoreClosedError("the store is closed")
        err.__cause__ = exc
        return err
    message = str(exc) or type(exc).__name__
    code, base = code_names(exc)
    cls: type[DatabaseError] = DatabaseError
    for klass in type(exc).__mro__:
        if klass in _BY_CLASS:
            cls = _BY_CLASS[klass]
            break
    else:
        if isinstance(exc, apsw.BindingsError):
            message = f"bad parameters: {message}"
        else:
            low = message.lower()
            for needle, klass2 in _BY_MESSAGE:
                if needle in low:
                    cls = klass2
                    break
    if isinstance(exc, apsw.BindingsError):
        # Normally found before a statement runs (storage.params); this is the safety net.
        bad = ParameterError(message, code=code)
        bad.__cause__ = exc
        return bad
    if cls is StatementTimeout:
        message = "statement timed out and was interrupted" if timeout else "interrupted"
    err = cls(message, code=code, base_code=base)
    err.__cause__ = exc
    return err


def invalid_text(exc: UnicodeDecodeError) -> InvalidTextError:
    """The error for a row whose TEXT value apsw could not decode (it decodes strictly)."""
    return InvalidTextError(
        f"a TEXT value in the result is not valid UTF-8 ({exc.reason} at byte {exc.start}); "
        "read that column as a BLOB, e.g. CAST(column AS BLOB), to get its bytes"
    )

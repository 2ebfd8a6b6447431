"""What the backends under test support, for SQLAlchemy's suite (one class for all four URLs).

What SQLite itself supports is open for pysqlite, aiosqlite and edgestore alike. The few things
edgestore refuses by design are closed for the edgestore dialects only, each with its reason;
``compare.py`` lists every test that runs on pysqlite and not on edgestore.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements

EDGESTORE = ["sqlite+edgestore", "sqlite+edgestore_async"]


def _open() -> exclusions.compound:
    return exclusions.open()


def _not_on_edgestore(reason: str) -> exclusions.compound:
    return exclusions.skip_if(EDGESTORE, reason)


# Each reason is printed by compare.py next to the tests it closes.
NO_ATTACH = (
    "edgestore's statement policy refuses ATTACH (one store, one file), so there is no "
    "second schema"
)
NO_TEMP = (
    "TEMP objects live in one SQLite connection; the edgestore pool runs a connection's "
    "statements on the writer or on readers, which do not share them"
)


class Requirements(SuiteRequirements):
    # -- connections ---------------------------------------------------------------------------
    @property
    def independent_connections(self) -> Any:
        # As SQLAlchemy's own requirements for every SQLite driver: tests that would open a
        # second engine of their own (the reflection tests' one-connection engine) use
        # config.db instead. Only config.db gets SQLite's provisioning, which ATTACHes the
        # test_schema file on each new connection; a second engine's connections lack it.
        return exclusions.skip_if(["sqlite"])

    # -- schemas (ATTACH) and temporary objects --------------------------------------------
    @property
    def schemas(self) -> Any:
        return _not_on_edgestore(NO_ATTACH)

    @property
    def cross_schema_fk_reflection(self) -> Any:
        return exclusions.closed()

    @property
    def temp_table_names(self) -> Any:
        return _not_on_edgestore(NO_TEMP)

    @property
    def has_temp_table(self) -> Any:
        return _not_on_edgestore(NO_TEMP)

    @property
    def temporary_tables(self) -> Any:
        return _not_on_edgestore(NO_TEMP)

    @property
    def temp_table_reflection(self) -> Any:
        return _not_on_edgestore(NO_TEMP)

    @property
    def temporary_views(self) -> Any:
        return _not_on_edgestore(NO_TEMP)

    @property
    def create_temp_table_as(self) -> Any:
        return _not_on_edgestore(NO_TEMP)

    # -- SQL that SQLite supports ------------------------------------------------------------
    create_table_as = property(lambda self: _open())
    table_ddl_if_exists = property(lambda self: _open())
    index_ddl_if_exists = property(lambda self: _open())
    views = property(lambda self: _open())
    intersect = property(lambda self: _open())
    except_ = property(lambda self: _open())
    window_functions = property(lambda self: _open())
    ctes = property(lambda self: _open())
    ctes_with_update_delete = property(lambda self: _open())
    tuple_in = property(lambda self: _open())
    nullsordering = property(lambda self: _open())
    boolean_col_expressions = property(lambda self: _open())
    dbapi_lastrowid = property(lambda self: _open())
    reflects_pk_names = property(lambda self: _open())
    foreign_key_constraint_name_reflection = property(lambda self: _open())
    check_constraint_reflection = property(lambda self: _open())
    indexes_with_expressions = property(lambda self: _open())
    server_defaults = property(lambda self: _open())
    expression_server_defaults = property(lambda self: _open())
    computed_columns = property(lambda self: _open())
    computed_columns_stored = property(lambda self: _open())
    computed_columns_virtual = property(lambda self: _open())
    computed_columns_reflect_persisted = property(lambda self: _open())
    update_from = property(lambda self: _open())
    mod_operator_as_percent_sign = property(lambda self: _open())
    json_type = property(lambda self: _open())
    regexp_match = property(lambda self: _open())
    timestamp_microseconds = property(lambda self: _open())
    datetime_historic = property(lambda self: _open())
    date_historic = property(lambda self: _open())
    supports_bitwise_or = property(lambda self: _open())
    supports_bitwise_and = property(lambda self: _open())
    supports_bitwise_not = property(lambda self: _open())
    supports_bitwise_shift = property(lambda self: _open())

    # -- transactions --------------------------------------------------------------------------
    # pysqlite's savepoints need SQLAlchemy's "BEGIN on begin" recipe (the suite applies it
    # only where a test asks for it); the edgestore dialects open the enclosing transaction
    # before a SAVEPOINT themselves. Open for all: pysqlite's failures here are its own.
    savepoints = property(lambda self: _open())
    autocommit = property(lambda self: _open())
    isolation_level = property(lambda self: _open())

    def get_isolation_levels(self, config: Any) -> dict[str, Any]:
        if config.db.dialect.driver.startswith("edgestore"):
            return {
                "default": "READ COMMITTED",
                "supported": ["AUTOCOMMIT", "READ COMMITTED", "SERIALIZABLE"],
            }
        return {
            "default": "SERIALIZABLE",
            "supported": ["SERIALIZABLE", "READ UNCOMMITTED", "AUTOCOMMIT"],
        }

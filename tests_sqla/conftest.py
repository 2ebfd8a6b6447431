"""SQLAlchemy's dialect compliance suite, run as its documented third-party setup.

This is a pytest session of its own (SQLAlchemy's plugin takes pytest over): run it from this
directory, ``pytest --dburi URL --junitxml=suite_<driver>.xml``, one session per backend
(``.ci/run`` runs pysqlite, aiosqlite, edgestore and edgestore_async); ``compare.py`` then
lists every test whose outcome differs between pysqlite and an edgestore dialect.
"""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import registry

registry.register("sqlite.edgestore", "edgestore.sqlalchemy.dialect", "EdgestoreDialect")
registry.register("sqlite.edgestore_async", "edgestore.sqlalchemy.dialect", "EdgestoreAsyncDialect")

pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

import provision  # noqa: E402, F401  (SQLite provisioning hooks)
from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402, F403

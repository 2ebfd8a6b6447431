"""SQLAlchemy's own dialect compliance suite (``sqlalchemy.testing.suite``), unchanged."""

from sqlalchemy.testing.suite import *  # noqa: F403

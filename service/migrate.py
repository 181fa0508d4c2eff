"""Schema migrations (Alembic): every server start brings its database to this version's schema.

Revisions live in ``service/migrations/versions/``; the tables they build are the ones
declared in :mod:`service.store` and :mod:`service.campaigns.store` (a test checks that the
two agree). A database made by sigmalab 0.1.0, before migrations existed, has the tables but
no ``alembic_version``: it is stamped at revision 0001 (its schema) and upgraded from there.

A new revision is a new file in ``versions/``: copy the newest, give it the next number as
``revision`` and the previous one as ``down_revision``, and write its ``upgrade()`` with
``op.batch_alter_table`` (SQLite alters a table by copying it).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

LEGACY_REVISION = "0001"
#: PostgreSQL advisory lock key: two servers starting at once migrate one after the other.
_LOCK_KEY = 0x5161_4C42


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision of this version of sigmalab."""
    script = ScriptDirectory.from_config(_config(None))  # type: ignore[arg-type]
    return script.get_current_head()


def current(engine: Engine) -> str | None:
    """The database's revision (None: empty database or one made before migrations)."""
    with engine.connect() as c:
        return MigrationContext.configure(c).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` in one transaction."""
    with engine.begin() as c:
        if c.dialect.name == "postgresql":
            c.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        inspector = sa.inspect(c)
        if inspector.has_table("jobs") and not inspector.has_table("alembic_version"):
            command.stamp(_config(c), LEGACY_REVISION)
        command.upgrade(_config(c), revision)

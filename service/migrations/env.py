"""Alembic environment: runs on the connection :func:`service.migrate.upgrade` passes in."""

from alembic import context

from service.store import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()

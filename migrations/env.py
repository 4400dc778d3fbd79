"""Alembic environment: runs on the connection `Store.upgrade` hands over, or on the URL."""

from alembic import context
from sqlalchemy import Connection, create_engine

import agents.context.models  # noqa: F401  (its tables join Base.metadata on import)
from agents.store.tables import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _run(conn)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()

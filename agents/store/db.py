"""The one engine and session factory per database URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs a round trip on every checkout, on the wake path. A connection
    # the server dropped fails its next statement instead; SQLAlchemy then invalidates the
    # pool, and callers retry (intake once, at once; the worker through the bus).
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=False, pool_recycle=1800)


def normalise_url(url: str) -> str:
    """Accept the `postgres://` and `postgresql://` forms people paste; we drive psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web process record deliveries while the worker reads them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def dialect_insert(dialect: str, table: type[Any] | Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT with the dialect's ON CONFLICT support (both dialects we run have it)."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


class Store:
    """Engine + session factory: the one way code reaches the database."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def insert(self, table: type[Any] | Table) -> postgresql.Insert | sqlite.Insert:
        return dialect_insert(self.engine.dialect.name, table)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self.sessions() as session:
            with session.begin():
                yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads on the hot path: autocommit, so no BEGIN/COMMIT round trips.

        Each statement sees the latest committed data; use `session()` for anything
        that writes or needs several reads to agree.
        """
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            with Session(bind=connection, expire_on_commit=False) as session:
                yield session

    def upgrade(self, revision: str = "heads") -> None:
        """Apply every Alembic migration (what `waooaw db upgrade` runs), or those up to `revision`."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        sqlite = self.engine.dialect.name == "sqlite"
        with self.engine.connect() as connection:
            if sqlite:
                # SQLite alters a table by rebuilding it, and dropping the old one would take the
                # rows that reference it along (ON DELETE CASCADE). Its documented way: foreign
                # keys off while the schema changes (the pragma is a no-op inside a transaction),
                # then check them all before committing.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            try:
                with connection.begin():
                    config.attributes["connection"] = connection
                    command.upgrade(config, revision)
                    if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
                        raise RuntimeError(f"the migrations left rows whose references are gone: {broken[:5]}")
            finally:
                if sqlite:
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    connection.commit()

    def dispose(self) -> None:
        self.engine.dispose()

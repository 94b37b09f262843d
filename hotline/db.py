"""Database engine, sessions and the schema check.

Sessions are opened by whoever calls a service (a request, a job, a command), never inside it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Alembic needs stable constraint names to alter tables later, on SQLite above all.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use hotline.db.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SchemaNotReady(RuntimeError):
    """The database is not at the newest migration."""


def private_sqlite_file(url: str) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use the umask, often 0644), and
    tighten one made earlier. SQLite gives its -wal and -shm files the database file's mode."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for name in (path, path + "-wal", path + "-shm"):
        if os.path.exists(name) and os.stat(name).st_mode & 0o077:
            os.chmod(name, 0o600)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        # hide_parameters (both engines): an error never prints bound values (numbers, bodies).
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn: Any, _record: Any) -> None:
            # WAL lets the worker write while web processes read; foreign keys are off by default.
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            # The driver's own transaction handling is off: it sent BEGIN before INSERT/UPDATE/DELETE
            # but not before SAVEPOINT, so a savepoint as a transaction's first write (intake's
            # insert-or-take) was committed by its RELEASE, and a later rollback kept half of it.
            conn.isolation_level = None

        _sqlite_begin_before_first_write(engine)
        return engine
    # pre_ping: a web process survives a PostgreSQL restart without being restarted itself.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_recycle=1800,
                         hide_parameters=True)


# Statements that need the transaction open (SAVEPOINT included, which pysqlite forgot).
_SQLITE_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|SAVEPOINT)\b", re.IGNORECASE)


def _sqlite_begin_before_first_write(engine: Engine) -> None:
    """SQLAlchemy's pysqlite recipe, with BEGIN sent at the transaction's first write, not its start.

    A BEGIN at the start would give every transaction a read snapshot from its first SELECT; a write
    after a slow step (a 30 s recording download, a Twilio call) then fails at once with "database
    is locked" (SQLITE_BUSY_SNAPSHOT) whenever another process committed meanwhile, and the busy
    timeout cannot help. Reads before the first write run as before, each on the newest data.
    """

    @event.listens_for(engine, "before_cursor_execute")
    def _begin(conn: Any, cursor: Any, statement: str, _params: Any, _context: Any, _many: bool) -> None:
        raw = conn.connection.dbapi_connection
        if not raw.in_transaction and _SQLITE_WRITE.match(statement):
            raw.execute("BEGIN")


class Database:
    """An engine and its session factory, plus hooks run after a commit (see hotline.outbox)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.after_commit_hooks: list[Callable[[Session], None]] = []
        event.listen(self.Session, "after_commit", self._after_commit)

    def _after_commit(self, session: Session) -> None:
        for hook in self.after_commit_hooks:
            hook(session)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.Session() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def insert_ignore(session: Session, table: Any, values: dict[str, Any], key: str) -> Any:
    """`INSERT ... ON CONFLICT (key) DO NOTHING RETURNING id`: the new row's id, or None when a row
    with that key exists already (a concurrent webhook won). One statement instead of a savepoint,
    a flush and a release; both SQLite (3.35+) and PostgreSQL speak it."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=[key]).returning(table.c.id)
    return session.execute(stmt).scalar()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Bring the database to the newest migration; running it again does nothing."""
    from alembic import command

    if url.startswith("sqlite"):
        private_sqlite_file(url)
    command.upgrade(alembic_config(url), "heads")


def missing_migrations(engine: Engine) -> set[str]:
    """Heads the database has not reached yet (empty when it is current)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return set(script.get_heads()) - current


def check_schema(engine: Engine) -> None:
    missing = missing_migrations(engine)
    if missing:
        raise SchemaNotReady(
            "The database is not migrated (missing revisions: "
            + ", ".join(sorted(missing))
            + "). Run `hotline db upgrade` first."
        )


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))

"""The database connection: engine, sessions, and the one place errors are wrapped.

SQLite is the embedded default (WAL, busy timeout, `BEGIN IMMEDIATE` for writes);
the same code runs on PostgreSQL. Every failure of the database or its driver leaves
the store as a one-line `StoreError` (README: exit 2, one line): `wrap_exceptions`
wraps each public method of the `Store` once, generators included, so no caller ever
sees SQLAlchemy (compare lemon24/reader's `wrap_exceptions`).
"""

from __future__ import annotations

import functools
import inspect as pyinspect
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, create_engine

from monitor.core.errors import StoreError

_SQLITE_BUSY_MS = 30_000
_F = TypeVar("_F", bound=Callable[..., Any])
_C = TypeVar("_C", bound=type)
_T = TypeVar("_T")


class Database:
    """An engine and its sessions: a read session, and a write session serialised
    (SQLite has one writer; queueing writers here beats spinning on busy_timeout)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._writer = engine.execution_options(monitor_begin="BEGIN IMMEDIATE")
        self._write_lock = threading.Lock()
        self._waiting: list[_Job[Any]] = []
        self._waiting_lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with (
            storage_errors(),
            self._write_lock,
            Session(self._writer, expire_on_commit=False) as session,
        ):
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def _grouped(self, work: Callable[[Session], _T]) -> _T:
        """`work` in a write transaction of its own savepoint, committed with the works
        that queued for the writer meanwhile (group commit): one commit for a few feeds'
        ingests instead of one each, where each commit rewrites every index page its
        rows touched (on SQLite, into the WAL).

        The first caller to get the writer runs the queue in order, up to `GROUP_MAX`
        works; the others find theirs done. A work that raises is rolled back to its
        savepoint and raises in its own caller alone; a commit that fails fails them all.
        """
        job = _Job(work)
        with self._waiting_lock:
            self._waiting.append(job)
        while not job.done:
            with self._write_lock:
                if job.done:
                    break
                with self._waiting_lock:
                    group = self._waiting[:GROUP_MAX]
                    del self._waiting[:GROUP_MAX]
                self._run_group(group)
        if job.error is not None:
            raise job.error
        return cast(_T, job.result)

    def _run_group(self, group: list[_Job[Any]]) -> None:
        try:
            with Session(self._writer, expire_on_commit=False) as session:
                try:
                    db = session.connection()
                    for job in group:
                        try:
                            with db.begin_nested():
                                job.result = job.work(session)
                        except Exception as exc:  # handed to its caller
                            job.error = exc
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        except BaseException as exc:  # handed to every caller
            for job in group:
                job.error = job.error or exc
        finally:
            for job in group:
                job.done = True

    def _insert_statement(self, table: Any) -> Any:
        """INSERT with the dialect's ON CONFLICT (both SQLite and PostgreSQL have it)."""
        if self._sqlite:
            return sqlite.insert(table)
        return postgresql.insert(table)


GROUP_MAX = 16
"""Works one group commit takes at most (`Database._grouped`)."""


class _Job(Generic[_T]):
    """A work waiting for the writer, and what became of it."""

    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[Session], _T]) -> None:
        self.work = work
        self.done = False
        self.result: _T | None = None
        self.error: BaseException | None = None


def engine_for(url: str) -> Engine:
    """An engine for `url` (nothing connects yet); StoreError when its driver is unusable."""
    try:
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    except ImportError as exc:
        raise StoreError(missing_driver(url.split("://", 1)[0], exc)) from None
    except SQLAlchemyError as exc:
        raise StoreError(short(exc)) from None
    if engine.dialect.is_async:
        engine.dispose()
        raise StoreError(
            f"{engine.dialect.driver} is an asyncio driver; monitor needs a synchronous one "
            "(postgresql+psycopg, sqlite)"
        )
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


POSTGRES_EXTRA = "pip install 'monitor[postgres]'"
"""How the PostgreSQL driver the store is written for (psycopg 3) is installed."""


def missing_driver(scheme: str, exc: ImportError) -> str:
    """One line for a URL scheme whose driver does not import: what to install."""
    if scheme in {"postgresql", "postgresql+psycopg"}:
        return (
            f"the driver of {scheme} (psycopg) is not installed: install monitor's "
            f"postgres extra ({POSTGRES_EXTRA})"
        )
    what = f"the driver of {scheme} is not installed ({exc})"
    if scheme.startswith("postgresql"):
        return f"{what}: use postgresql+psycopg:// with monitor's postgres extra ({POSTGRES_EXTRA})"
    return what


def _is_database_error(exc: BaseException) -> bool:
    """SQLAlchemy's errors and the drivers' own (DB-API) errors: a driver error raised
    outside SQLAlchemy's wrapping (a connect hook, a cursor used directly). psycopg's are
    told by their module, so that the store never imports a driver it does not use."""
    if isinstance(exc, SQLAlchemyError | sqlite3.Error):
        return True
    return any(
        klass.__module__.partition(".")[0] == "psycopg" and klass.__name__ == "Error"
        for klass in type(exc).__mro__
    )


@contextmanager
def storage_errors() -> Iterator[None]:
    """The database's (and so the driver's) failures, as StoreError: the store's boundary."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        if not _is_database_error(exc):
            raise
        raise StoreError(short(exc)) from None


def wrap_exceptions(method: _F) -> _F:
    """`method`, raising StoreError for any database failure, also when a generator
    fails while the caller iterates it."""
    if pyinspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(*args: Any, **kwargs: Any) -> Any:
            with storage_errors():
                yield from method(*args, **kwargs)

        return cast(_F, generator)

    @functools.wraps(method)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with storage_errors():
            return method(*args, **kwargs)

    return cast(_F, wrapped)


def wrap_public_methods(cls: _C) -> _C:
    """Wrap every public method `cls` has (its own and its bases'), once, at the facade:
    a method added to any part of the store cannot forget to."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attribute = pyinspect.getattr_static(cls, name)
        if isinstance(attribute, staticmethod | classmethod):
            setattr(cls, name, type(attribute)(wrap_exceptions(attribute.__func__)))
        elif pyinspect.isfunction(attribute):
            setattr(cls, name, wrap_exceptions(attribute))
    return cls


def short(exc: BaseException) -> str:
    """The driver's own message, first line only (no SQL, no parameters, no traceback)."""
    original = getattr(exc, "orig", None)
    text = str(original) if original is not None else str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(original or exc).__name__


def _switch_to_wal(cursor: Any) -> None:
    """PRAGMA journal_mode=WAL, waiting its turn: on a fresh file it needs a lock that
    another process opening the file at the same moment may hold, and SQLite answers
    "database is locked" at once there rather than calling the busy handler."""
    deadline = time.monotonic() + _SQLITE_BUSY_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN, so writes can be IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get("monitor_begin", "BEGIN"))


def rowcount(result: Any) -> int:
    """Rows an UPDATE matched (SQLAlchemy types `execute` as returning a plain Result)."""
    return int(getattr(result, "rowcount", 0) or 0)


def utc(moment: datetime) -> datetime:
    """Aware UTC (SQLite hands back naive datetimes from aggregate queries)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def aware(moment: object) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    assert isinstance(moment, datetime)
    return utc(moment)


def create_tables(session: Session, *tables: str) -> None:
    """Create the named tables (all of them when none is named) as the models say."""
    wanted = [SQLModel.metadata.tables[name] for name in tables] if tables else None
    SQLModel.metadata.create_all(session.connection(), tables=wanted)

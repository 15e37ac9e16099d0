"""A throwaway PostgreSQL schema on the local server, for tests that run on both stores."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

PG_ROOT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@functools.cache
def available() -> bool:
    engine = create_engine(PG_ROOT)
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception:
        return False
    finally:
        engine.dispose()
    return True


@contextmanager
def schema_url() -> Iterator[str]:
    """The URL of a fresh schema, dropped afterwards; skips when PostgreSQL is down."""
    if not available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ROOT)
    with admin.begin() as connection:
        connection.execute(text(f"create schema {schema}"))
    try:
        yield f"{PG_ROOT}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"drop schema {schema} cascade"))
        admin.dispose()

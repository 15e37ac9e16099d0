"""The store under test, on SQLite and on PostgreSQL (a throwaway schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.ingest.decide import DERIVATIONS
from monitor.store.store import Store
from tests.support.postgres import schema_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        opened = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}", derive=DERIVATIONS)
        yield opened
        opened.close()
        return
    with schema_url() as url:
        opened = Store.open(url, derive=DERIVATIONS)
        yield opened
        opened.close()

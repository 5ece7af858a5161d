"""One `store` fixture runs each store test on SQLite (a file) and on PostgreSQL (the server
tests/conftest.py provides)."""

from __future__ import annotations

import pytest


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'record.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    """The URL of an empty database on each backend."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def store(db_url):
    from sessions.store import open_store

    s = open_store(db_url)
    yield s
    s.close()

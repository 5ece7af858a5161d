"""One `store` fixture runs each store test on SQLite (a file) and on PostgreSQL.

PostgreSQL is SMP_TEST_PG_URL if set, else a throwaway server these tests start. If none can
be had the PostgreSQL cases skip with the reason, except under CI, where they fail.
"""

from __future__ import annotations

import itertools
import os

import pytest

from tests.sessions.pgserver import NoPostgres, PgServer

_ran = {"postgresql": 0}
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_admin_url():
    if url := os.environ.get("SMP_TEST_PG_URL"):
        yield url
        return
    server = PgServer()
    try:
        yield server.start()
    except NoPostgres as err:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and no PostgreSQL server could be started: {err}")
        pytest.skip(f"no PostgreSQL server: {err} (set SMP_TEST_PG_URL to use one)")
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_admin_url):
    """A fresh, empty database on the server for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"smp_test_{os.getpid()}_{next(_counter)}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and "[postgresql" in report.nodeid:
        _ran["postgresql"] += 1


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(
        f"PostgreSQL store tests passed: {_ran['postgresql']} (on a real server)")

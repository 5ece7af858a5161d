"""Fixtures for every test: a private data and runtime directory for the whole run (nothing
is written to the user's own), and the PostgreSQL server the database tests share.

PostgreSQL is SMP_TEST_PG_URL if set, else a throwaway server these tests start. If none can
be had the PostgreSQL cases skip with the reason, except under CI, where they fail.
"""

from __future__ import annotations

import gc
import itertools
import os
import shutil
import sys
import tempfile

import pytest

from tests.sessions.pgserver import NoPostgres, PgServer

# Journals, logs and the registry of machine services: this run's own (short paths: a Unix
# socket's path must fit in 108 bytes).
_private = tempfile.mkdtemp(prefix="smp-test-")
os.environ["XDG_DATA_HOME"] = os.path.join(_private, "data")
os.environ["XDG_RUNTIME_DIR"] = os.path.join(_private, "run")
os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)

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


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "own_heap: the test sees the process's heap as it is, nothing frozen "
        "(heap_left_by_earlier_tests_frozen)")
    config.addinivalue_line(
        "markers", "slow(seconds): a long test, about `seconds` on an idle machine; the long "
        "tests start first (pytest_collection_modifyitems)")


def _seconds(item) -> float:
    mark = item.get_closest_marker("slow")
    return float(mark.args[0]) if mark and mark.args else 0.0


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected
def pytest_collection_modifyitems(config, items):
    """The long tests first, longest first, so that none starts at the end and leaves the
    other worker idle.

    `-n 2 --dist worksteal` (make test) hands each worker half of the collection in its order,
    then moves tests from the end of the longer queue to the idle one: the long tests, all at
    the head of the first half, run one after the other on one worker while the other works
    through short ones. (Shared between the two halves, two of them ran at once at the start,
    each a console, a simulator and a service: on two loaded cores a newcomer tour and the
    crash test timed out.) Without xdist it is only an order (the other tests keep theirs)."""
    slow = sorted((i for i in items if _seconds(i)), key=_seconds, reverse=True)
    chosen = set(map(id, slow))
    items[:] = [*slow, *(i for i in items if id(i) not in chosen)]


# A full collection once the worker has grown by this much since the last one (bytes).
COLLECT_AFTER_GROWTH = 512 * 2**20
_collected_at = {"rss": 0}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(autouse=True)
def heap_left_by_earlier_tests_frozen(request):
    """What the tests before this one left on the heap is frozen (out of the collector's
    scans) while it runs, as it would not be there at all in a process of its own.

    The console collects and freezes its start-up heap when it mounts (console/app.py). In a
    test worker that heap also holds what every earlier test left (Textual's caches of
    rendered lines among them: 12,000 objects more after each Pilot test), and each of those
    full collections took 0.2 to 0.8 s, one per app; the collector's automatic full scans
    grew with it. What the earlier tests left as garbage (their apps) is freed by a full
    collection here once the worker has grown by COLLECT_AFTER_GROWTH: one every ten tests
    cost more than it saved (a second each, in a worker late in the run)."""
    if request.node.get_closest_marker("own_heap") or sys.platform != "linux":
        gc.unfreeze()
        yield
        return
    if _rss() - _collected_at["rss"] > COLLECT_AFTER_GROWTH:
        gc.unfreeze()
        gc.collect()
        _collected_at["rss"] = _rss()
    gc.freeze()
    yield
    gc.unfreeze()


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and "[postgresql" in report.nodeid:
        _ran["postgresql"] += 1


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_private, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(
        f"PostgreSQL store tests passed: {_ran['postgresql']} (on a real server)")

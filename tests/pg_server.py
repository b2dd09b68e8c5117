"""Real PostgreSQL servers for the recorder's tests (hkrt.testing.postgres): one per session, a fresh database
per test, and a private server for a test that takes the database away.  Skipped, with the package to install,
where PostgreSQL's binaries or psycopg are missing."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from hkrt.testing.postgres import PG_PACKAGE, PostgresServer, find_pg_bindir

_names = itertools.count()


def _require() -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL recorder's tests need psycopg: pip install 'hkrt[postgres]'")
    if find_pg_bindir() is None:
        pytest.skip(f"PostgreSQL is not installed (initdb/pg_ctl not found): install the {PG_PACKAGE} package")


def _server(template: Path | None = None) -> Iterator[PostgresServer]:
    _require()
    server = PostgresServer().init(template).start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[Path]:
    """A fresh cluster's data directory (never started), copied for each private server: quicker than initdb."""
    _require()
    blank = PostgresServer().init()
    try:
        yield blank.data
    finally:
        blank.remove()


@pytest.fixture(scope="session")
def pg_server(pg_template: Path) -> Iterator[PostgresServer]:
    """One server for the session; tests must leave it running."""
    yield from _server(pg_template)


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A URL to an empty database of its own on the session server, dropped afterwards."""
    import psycopg

    name = f"t{next(_names)}"
    with psycopg.connect(pg_server.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield pg_server.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(pg_server.url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_private(pg_template: Path) -> Iterator[PostgresServer]:
    """A server of the test's own, which it may stop and start again."""
    yield from _server(pg_template)

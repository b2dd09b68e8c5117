"""PostgreSQL URLs: recognised, shown without their password, and connected to.

psycopg is an optional dependency (``pip install 'hkrt[postgres]'``): it is imported here, on the first
connection, never with ``hkrt``.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from hkrt.store import _is_database_url

INSTALL_HINT = "PostgreSQL support needs psycopg: pip install 'hkrt[postgres]' (or 'psycopg[binary]>=3.2')"
is_postgres_url = _is_database_url  # True for a postgresql:// or postgres:// URL: a store that is a database


def redact_url(url: str) -> str:
    """``url`` with its password (and a ``password=`` query parameter) replaced by ``***``: what logs,
    stats and error lines show."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "postgresql://<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = "&".join(
        f"{key}=***" if key.lower() == "password" else f"{key}={value}"
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_password(url: str) -> str | None:
    """The password in ``url`` (userinfo or ``password=``), to scrub from error texts."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return urllib.parse.unquote(parts.password)
    for key, value in urllib.parse.parse_qsl(parts.query):
        if key.lower() == "password":
            return value
    return None


def describe_error(err: BaseException, url: str) -> str:
    """``Type: message`` of a database error, first line only, with the URL's password scrubbed."""
    text = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    secret = url_password(url)
    if secret:
        text = text.replace(secret, "***").replace(urllib.parse.quote(secret, safe=""), "***")
    return text


def psycopg_module() -> Any:
    """The psycopg module, or ImportError with the line that says how to install it."""
    try:
        import psycopg
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return psycopg


def connect(url: str, *, connect_timeout: float = 5.0, application_name: str = "hkrt") -> Any:
    """A new autocommit connection to ``url``; raises psycopg.OperationalError when the server is not there."""
    psycopg = psycopg_module()
    return psycopg.connect(
        url, autocommit=True, connect_timeout=max(1, round(connect_timeout)), application_name=application_name
    )

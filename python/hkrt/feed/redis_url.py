"""Where a Redis server is: the ``--redis`` URL, checked, shown without its password, and a client
for it.

Accepted: ``redis://[user:password@]host[:port][/db]``, ``rediss://`` (the same over TLS) and
``unix://[user:password@]/path/to/redis.sock[?db=N]`` (a local socket).  Nothing listens on this side:
the client connects where it is told.  A password never reaches a log line, a status line or an error
text: :func:`display_url` masks it and :func:`redact` takes it out of any text (a server's error echo).

A password may also come from the environment, ``HKRT_REDIS_PASSWORD``, for a URL that carries none: then no
password is on a command line, where other users of the host could read it in the process list (``hkrt node``
passes it to its children that way).

redis-py is imported by :func:`connect`, not with this module (``import hkrt`` loads no client);
it is the ``redis`` extra: ``pip install "hkrt[redis]"``.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

SCHEMES = ("redis", "rediss", "unix")
PASSWORD_ENV = "HKRT_REDIS_PASSWORD"  # the password of a URL that carries none
_MASK = "***"


@dataclass(frozen=True)
class RedisUrl:
    """A checked Redis URL: ``url`` is the one to connect with, ``display`` the one to show."""

    url: str
    display: str
    password: str | None
    password_from_env: bool = False  # the URL has none: connect() passes $HKRT_REDIS_PASSWORD

    def redact(self, text: str) -> str:
        """``text`` with the password (as is and URL-encoded) replaced by ``***``."""
        return redact(text, self.password)


def parse_redis_url(url: str) -> RedisUrl:
    """Check ``url`` and return it with its display form; a ValueError names what is wrong, and
    never quotes the password."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
        port = parts.port  # a ValueError for a port that is not a number
    except ValueError as err:
        raise ValueError(f"invalid Redis URL {_masked(url)!r}: {err}") from err
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"invalid Redis URL {_masked(url)!r}: expected redis://HOST[:PORT][/DB], rediss://... (TLS) "
            "or unix:///PATH/TO/redis.sock"
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError(f"invalid Redis URL {_masked(url)!r}: unix:// needs a socket path")
    elif not parts.hostname:
        raise ValueError(f"invalid Redis URL {_masked(url)!r}: no host")
    elif port is not None and not 0 < port < 65536:
        raise ValueError(f"invalid Redis URL {_masked(url)!r}: port {port} is out of range")
    query = urllib.parse.parse_qs(parts.query)
    if "password" in query:
        password = query["password"][0]
    if password is None and os.environ.get(PASSWORD_ENV):
        return RedisUrl(url, _masked(url), os.environ[PASSWORD_ENV], password_from_env=True)
    return RedisUrl(url, _masked(url), password)


def display_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and status lines)."""
    return _masked(url)


def redact(text: str, password: str | None) -> str:
    if not password:
        return text
    for form in {password, urllib.parse.quote(password, safe=""), urllib.parse.quote(password)}:
        text = text.replace(form, _MASK)
    return text


def _masked(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{_MASK}@{hostport}"
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if password is None and not any(k == "password" for k, _ in pairs):
        return url
    query = "&".join(f"{k}={_MASK}" if k == "password" else urllib.parse.urlencode([(k, v)]) for k, v in pairs)
    # built by hand: urlunsplit drops the "//" of unix:///path, whose host part is empty
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def connect(url: RedisUrl, *, timeout: float = 5.0, name: str | None = None) -> Any:
    """A redis-py client for ``url`` that does not retry by itself (the callers retry with their own
    backoff and count every reconnect) and reads bytes as they are.  ``timeout`` bounds connecting
    and every reply (a blocking read adds its block time to it)."""
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as err:
        raise ImportError('Redis streams need the redis package: pip install "hkrt[redis]"') from err
    extra = {"password": url.password} if url.password_from_env else {}
    return redis.Redis.from_url(
        url.url,
        **extra,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        client_name=re.sub(r"[^A-Za-z0-9_.:-]", "_", name) if name else None,  # CLIENT SETNAME takes no spaces
        health_check_interval=0,
    )

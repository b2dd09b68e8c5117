"""Where the metrics endpoint listens and who may read it: loopback by default, a bearer token for any
other address (docs/metrics.md, "Safety").

The token comes from ``$HKRT_METRICS_TOKEN``, or from the file named by ``$HKRT_METRICS_TOKEN_FILE`` (its
first line), or from the caller; it is never logged nor shown in an error.  When one is set, every
request must carry ``Authorization: Bearer <token>`` (compared in constant time), on loopback too.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "HKRT_METRICS_TOKEN"
TOKEN_FILE_ENV = "HKRT_METRICS_TOKEN_FILE"
MIN_TOKEN_CHARS = 16
DEFAULT_PORT = 9300


class AccessError(ValueError):
    """A bind the endpoint refuses (beyond loopback without a token, a short token, a bad address)."""


@dataclass(frozen=True)
class Bind:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def parse_address(text: str) -> Bind:
    """``HOST:PORT``, ``[IPv6]:PORT``, or a bare ``PORT`` (on 127.0.0.1); port 0 picks a free one."""
    text = text.strip()
    if text.isdigit():
        host, port_text = "127.0.0.1", text
    elif text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep:
            raise AccessError(f"metrics address {text!r}: an IPv6 host goes in brackets, as [::1]:{DEFAULT_PORT}")
    else:
        host, _, port_text = text.rpartition(":")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise AccessError(f"metrics address {text!r}: expected HOST:PORT (such as 127.0.0.1:{DEFAULT_PORT}) or a port")
    return Bind(host, int(port_text))


def load_token(token: str | None = None, *, env: str = TOKEN_ENV, file_env: str = TOKEN_FILE_ENV) -> str | None:
    """The bearer token: ``token`` if given, else ``$HKRT_METRICS_TOKEN``, else the first line of the file
    ``$HKRT_METRICS_TOKEN_FILE``; None when none is set.  ``env``/``file_env``: other variables (the
    dashboard's)."""
    if token:
        return token
    value = os.environ.get(env, "").strip()
    if value:
        return value
    path = os.environ.get(file_env, "").strip()
    if path:
        try:
            lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise AccessError(f"{file_env}: cannot read {path}: {err.strerror or err}") from err
        first = lines[0].strip() if lines else ""
        if not first:
            raise AccessError(f"{file_env}: {path} is empty")
        return first
    return None


def check_bind(
    bind: Bind, token: str | None, *, what: str = "metrics", env: str = TOKEN_ENV, file_env: str = TOKEN_FILE_ENV
) -> None:
    """Refuse (AccessError, one line) a bind beyond loopback without a token, and a short token.  ``what``,
    ``env``, ``file_env``: the service and its variables, as the messages name them (the dashboard's)."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise AccessError(f"the {what} token is shorter than {MIN_TOKEN_CHARS} characters ({env} or {file_env}): "
                          "use a random one (python -c 'import secrets; print(secrets.token_urlsafe())')")  # fmt: skip
    if not bind.loopback and token is None:
        raise AccessError(f"{what} on {bind} would be reachable beyond this machine: set {env} (or "
                          f"{file_env}) to a bearer token, or bind 127.0.0.1")  # fmt: skip


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header carries the token (always, when there is none to check)."""
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))

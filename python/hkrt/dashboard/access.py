"""Who may read the dashboard and who may press its halt button (docs/dashboard.md, "Safety").

The address rules are the metrics endpoint's (:mod:`hkrt.ops.access`): loopback by default, a token required
to bind any other address.  The dashboard's token comes from the caller, ``$HKRT_DASHBOARD_TOKEN`` or the
first line of the file ``$HKRT_DASHBOARD_TOKEN_FILE``; without one on loopback, a random token is made for the
run (shown once on the terminal, in the URL's fragment, which browsers never send).  Reading needs the token
only beyond loopback; halting always needs it.  It is compared in constant time and never logged.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from hkrt.ops.access import AccessError, Bind, authorized, check_bind, load_token, parse_address

TOKEN_ENV = "HKRT_DASHBOARD_TOKEN"
TOKEN_FILE_ENV = "HKRT_DASHBOARD_TOKEN_FILE"
DEFAULT_ADDRESS = "127.0.0.1:8050"

__all__ = ["DEFAULT_ADDRESS", "Access", "AccessError", "dashboard_access", "token_matches"]


@dataclass(frozen=True)
class Access:
    bind: Bind
    token: str = ""  # never empty once made by dashboard_access
    generated: bool = False  # made for this run: the terminal shows it once
    read_needs_token: bool = False  # beyond loopback

    def __repr__(self) -> str:  # the token stays out of reprs and tracebacks
        return f"Access({self.bind}, generated={self.generated}, read_needs_token={self.read_needs_token})"


def dashboard_access(address: str = DEFAULT_ADDRESS, token: str | None = None) -> Access:
    """Check ``address`` (``HOST:PORT`` or a port) and the token; AccessError (one line) when refused."""
    try:
        bind = parse_address(address)
    except AccessError as err:
        raise AccessError(str(err).replace("metrics address", "dashboard address").replace("9300", "8050")) from None
    given = load_token(token, env=TOKEN_ENV, file_env=TOKEN_FILE_ENV)
    check_bind(bind, given, what="dashboard", env=TOKEN_ENV, file_env=TOKEN_FILE_ENV)
    if given is None:
        return Access(bind, secrets.token_urlsafe(24), generated=True)
    return Access(bind, given, read_needs_token=not bind.loopback)


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison of a token the client sent."""
    return authorized(f"Bearer {given or ''}", token)

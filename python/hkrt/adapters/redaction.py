"""Secrets kept out of error texts and logs, in every form a server may echo them: shared by the execution
clients that log in somewhere (mail, easytrader), so neither venue imports the other."""

from __future__ import annotations

import base64
import functools
import json
import re
import urllib.parse
from collections.abc import Iterable

__all__ = ["redact_secrets"]

_REDACTED = "***"
# A run of base64 (standard or URL-safe alphabet) characters: an encoded secret is hidden by replacing the run.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]+=*")
_MIN_BASE64_CORE = 4  # shorter cores would match ordinary words; a secret that short is no secret


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 text that encodes ``raw`` wherever it sits in an encoded blob.

    AUTH PLAIN sends base64("\\0user\\0password"), so the password's bytes start at any offset mod 3
    and its base64 differs with that offset.  For each offset, the characters whose six bits come from
    ``raw`` alone are the same whatever surrounds it: that core is what to look for.
    """
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        first = -(-8 * offset // 6)  # first character all of whose bits are in raw
        end = 8 * (offset + len(raw)) // 6  # one past the last such character
        core = encoded[first:end]
        if len(core) >= _MIN_BASE64_CORE:
            cores.add(core)
            cores.add(core.translate(str.maketrans("+/", "-_")))  # URL-safe alphabet
    return cores


def redact_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret replaced by ``***``, in the forms a server may echo it: as is, escaped
    as in JSON or ``repr``, URL-encoded (any hex case) and base64-encoded (alone or inside a longer blob
    such as AUTH PLAIN's).  Empty secrets are ignored; a base64 form is recognised once the secret has
    three bytes or more."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        exact = {
            secret,
            json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1],
            repr(secret)[1:-1],
            repr(secret.encode("utf-8"))[2:-1],
        }
        for form in sorted(exact, key=len, reverse=True):
            text = text.replace(form, _REDACTED)
        encoded = {
            urllib.parse.quote(secret, safe=""),
            urllib.parse.quote(secret),
            urllib.parse.quote_plus(secret, safe=""),
        } - exact
        for form in sorted(encoded, key=len, reverse=True):
            text = re.sub(re.escape(form), _REDACTED, text, flags=re.IGNORECASE)
        # base64 of any of those forms: a server may echo a whole request (a JSON body, a form) encoded
        cores = set().union(*(_base64_cores(form.encode("utf-8")) for form in exact | encoded))
        if cores:
            text = _BASE64_RUN.sub(functools.partial(_hide_match, cores=cores), text)
    return text


def _hide_match(match: re.Match[str], cores: set[str]) -> str:
    run = match.group()
    return _REDACTED if any(core in run for core in cores) else run

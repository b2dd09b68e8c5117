"""Per-message authentication of the spot feed: HMAC-SHA256 with a shared key.

A feed that crosses the network must not accept spots from whoever can reach its port.  When
a key is configured, every message (spot batches, heartbeats, retransmission requests and
replies) travels *sealed*::

    b"HKA1" | 32-byte HMAC-SHA256(key, payload) | payload

and a receiver keeps only messages whose tag verifies (:func:`unseal`, a constant-time
compare).  The payload itself is unchanged: a sealed spot batch is the wire message after a
36-byte prefix.  Sealing proves who sent a message, not that it is new: a captured message
replayed later carries an old sequence and is dropped by the receiver's sequence rules.

The key comes, in this order, from an explicit ``key=`` argument (bytes, or a str of hex),
an explicit key file, the ``HKRT_FEED_KEY`` environment variable (hex), or the key file named
by ``HKRT_FEED_KEY_FILE``.  A key file holds the key as hex (``openssl rand -hex 32 > key``)
and must be readable by its owner only on POSIX systems; anything looser is refused.

:func:`require_auth` is the rule: TCP on anything but loopback needs a key.  ipc:// and
loopback TCP stay zero-config.  docs/feed-recovery.md has the details.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import stat
from collections.abc import Mapping
from pathlib import Path

MAGIC = b"HKA1"
TAG_BYTES = 32
OVERHEAD = len(MAGIC) + TAG_BYTES  # bytes a sealed message adds to its payload
MIN_KEY_BYTES = 16
MAX_KEY_FILE_BYTES = 4096  # a key file is a line of hex; anything far larger is not a key file
ENV_KEY = "HKRT_FEED_KEY"
ENV_KEY_FILE = "HKRT_FEED_KEY_FILE"

_LOCAL_SCHEMES = ("ipc://", "inproc://", "abstract://")
_LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost", "ip6-loopback"}


class FeedKeyError(ValueError):
    """A feed key that cannot be used (malformed, too short, unsafe key file).  One line."""


def seal(key: bytes, payload: bytes | bytearray | memoryview) -> bytes:
    """``MAGIC | HMAC-SHA256(key, payload) | payload``."""
    body = bytes(payload)
    return MAGIC + hmac.new(key, body, hashlib.sha256).digest() + body


def unseal(key: bytes, data: bytes | bytearray | memoryview) -> bytes | None:
    """The payload of a sealed message, or None when it is not sealed or its tag does not
    verify under ``key`` (tampered, or sealed with another key)."""
    view = memoryview(data)
    if len(view) < OVERHEAD or view[: len(MAGIC)] != MAGIC:
        return None
    payload = bytes(view[OVERHEAD:])
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, bytes(view[len(MAGIC) : OVERHEAD])):
        return None
    return payload


def is_sealed(data: bytes | bytearray | memoryview) -> bool:
    """True when ``data`` looks sealed (starts with the magic); says nothing about its tag.
    Lets a receiver tell "unauthenticated" from "authenticated with a wrong key"."""
    return len(data) >= OVERHEAD and bytes(memoryview(data)[: len(MAGIC)]) == MAGIC


# ------------------------------------------------------------------------------ keys
def parse_key(value: bytes | bytearray | str, source: str = "key") -> bytes:
    """Key bytes from bytes (as they are) or a str of hex; at least :data:`MIN_KEY_BYTES`."""
    if isinstance(value, str):
        text = value.strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            raise FeedKeyError(
                f"{source} must be hex (e.g. the output of `openssl rand -hex 32`), got {len(text)} characters"
                " that are not"
            ) from None
    elif isinstance(value, (bytes, bytearray)):
        key = bytes(value)
    else:
        raise FeedKeyError(f"{source} must be bytes or a hex str, not {type(value).__name__}")
    if len(key) < MIN_KEY_BYTES:
        raise FeedKeyError(f"{source} is {len(key)} bytes; a feed key needs at least {MIN_KEY_BYTES} (32 advised)")
    return key


def read_key_file(path: str | Path) -> bytes:
    """The key held (as hex) in ``path``; refused unless only its owner can read it (POSIX)."""
    file = Path(path).expanduser()
    try:
        info = file.stat()
    except OSError as err:
        raise FeedKeyError(f"cannot read feed key file {file}: {err.strerror or err}") from None
    if not stat.S_ISREG(info.st_mode):
        raise FeedKeyError(f"feed key file {file} is not a regular file")
    if os.name == "posix" and info.st_mode & 0o077:
        raise FeedKeyError(
            f"feed key file {file} is open to other users (mode {oct(stat.S_IMODE(info.st_mode))}); chmod 600 it"
        )
    if info.st_size > MAX_KEY_FILE_BYTES:
        raise FeedKeyError(f"feed key file {file} is {info.st_size} bytes; expected one line of hex")
    try:
        text = file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as err:
        raise FeedKeyError(f"cannot read feed key file {file}: {err}") from None
    return parse_key(text, f"feed key file {file}")


def load_key(
    key: bytes | bytearray | str | None = None,
    *,
    key_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    key_env: str = ENV_KEY,
    file_env: str = ENV_KEY_FILE,
) -> bytes | None:
    """The feed key to use, or None for none: ``key``, else ``key_file``, else ``$HKRT_FEED_KEY``
    (hex), else the file ``$HKRT_FEED_KEY_FILE``.  Raises :class:`FeedKeyError` on a bad key, naming the
    variable it came from.  ``key_env``, ``file_env``: other variables (the trader's)."""
    if key is not None:
        return parse_key(key)
    if key_file is not None:
        return read_key_file(key_file)
    env = os.environ if environ is None else environ
    if env.get(key_env, "").strip():
        return parse_key(env[key_env], f"${key_env}")
    if env.get(file_env, "").strip():
        try:
            return read_key_file(env[file_env].strip())
        except FeedKeyError as err:
            raise FeedKeyError(f"${file_env}: {err}") from None
    return None


# ------------------------------------------------------------------------------ the rule
def address_host(address: str) -> str | None:
    """The host part of a ``tcp://host:port`` style address (brackets removed), None for
    addresses without a network host (ipc://, inproc://)."""
    if address.startswith(_LOCAL_SCHEMES):
        return None
    _, sep, rest = address.partition("://")
    if not sep:
        rest = address
    rest = rest.split("/", 1)[0]
    if ";" in rest:  # nng's "tcp://local_if;remote:port" dial form: the remote counts
        rest = rest.rsplit(";", 1)[1]
    if rest.startswith("["):
        return rest[1:].split("]", 1)[0]
    host, sep, _port = rest.rpartition(":")
    return host if sep else rest


def is_loopback(address: str) -> bool:
    """True when ``address`` cannot be reached from another machine: ipc:// and inproc://,
    or TCP on 127.0.0.0/8, ::1 or ``localhost``.  0.0.0.0, an empty host or ``*`` (every
    interface), a LAN address and any other host name are not loopback."""
    host = address_host(address)
    if host is None:
        return True
    host = host.strip().lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a host name: it may resolve anywhere, and could change
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def require_auth(address: str, key: bytes | None, role: str) -> None:
    """Raise ValueError (one line) when ``address`` is reachable beyond this machine and no
    key is configured.  ``role`` names who asks ("publisher", "subscriber", ...)."""
    if key is None and not is_loopback(address):
        raise ValueError(
            f"{role} on {address} needs a feed key: TCP beyond loopback is authenticated "
            f"(set {ENV_KEY} to a hex key or {ENV_KEY_FILE} to an owner-only key file), "
            "or use 127.0.0.1 or ipc://"
        )

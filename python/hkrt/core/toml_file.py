"""Reading a TOML config file, with one line naming the file and the problem when it cannot be read."""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("hkrt.config")

SECRET_WORDS = ("password", "secret", "token", "key", "comm_password")  # a key holding one of these is a secret


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed file (``~`` expanded); ValueError naming the file when it is missing, a directory,
    not UTF-8 or not valid TOML."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
    file = Path(path).expanduser()
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {file} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"config file {file} is a directory") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"config file {file} is not UTF-8 text: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config file {file} is not valid TOML: {err}") from None


def is_secret(key: str) -> bool:
    return any(w in key.lower() for w in SECRET_WORDS)


def secret_keys(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted names of the keys, at any depth, that look like secrets and have a value."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from secret_keys(value, f"{name}.")
        elif is_secret(str(key)) and value not in (None, ""):
            yield name


def warn_if_readable_by_others(file: Path, keys: list[str]) -> None:
    """WARNING when a file holding secrets is readable by its group or by others (POSIX modes only: on
    Windows access is governed by ACLs, which the mode bits do not show)."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(file.stat().st_mode)
    readers = [who for who, bit in (("group", stat.S_IRGRP), ("others", stat.S_IROTH)) if mode & bit]
    if readers:
        log.warning(
            "config file %s holds a secret (%s) and is readable by %s (mode %03o): run chmod 600 %s",
            file, ", ".join(keys), " and ".join(readers), mode, file,
            extra={"path": str(file), "mode": f"{mode:03o}", "secret_keys": keys},
        )  # fmt: skip

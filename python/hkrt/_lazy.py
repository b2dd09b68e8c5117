"""Lazy package exports (PEP 562): a package names what it offers, and each name's module is
imported the first time the name is touched.  ``import hkrt`` stays cheap this way (no HTTP,
SMTP, TLS, Parquet or socket module until used; docs/architecture.md, "Import cost and
portability"), while ``from hkrt import KDataStore`` and ``hkrt.store.load`` work as if
everything had been imported eagerly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, namespace: dict[str, Any], names: Mapping[str, str], submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps a public name to the module
    defining it; ``submodules`` are reachable as attributes after a bare import of the package.
    ``namespace`` is the package's ``globals()``: a name is bound there once loaded, so later
    lookups never come back here."""
    subs = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        module_name = names.get(name)
        if module_name is not None:
            value = getattr(importlib.import_module(module_name), name)
            namespace[name] = value
            return value
        if name in subs:
            return importlib.import_module(f"{package}.{name}")  # the import binds it in the package too
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names) | subs)

    return __getattr__, __dir__

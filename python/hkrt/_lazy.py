"""Lazy package exports (PEP 562): a package names what it offers, and each name's module is
imported the first time the name is touched.  ``import hkrt`` stays cheap this way (no HTTP,
SMTP, TLS, Parquet or socket module until used; docs/architecture.md, "Import cost and
portability"), while ``from hkrt import KDataStore`` and ``hkrt.store.load`` work as if
everything had been imported eagerly.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str,
    namespace: dict[str, Any],
    names: Mapping[str, str],
    submodules: Iterable[str] = (),
    moved: Mapping[str, str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps a public name to the module
    defining it; ``submodules`` are reachable as attributes after a bare import of the package.
    ``namespace`` is the package's ``globals()``: a name is bound there once loaded, so later
    lookups never come back here.  ``moved`` maps names that left the package to the module that
    holds them now: they still resolve, with a DeprecationWarning naming the new place, each time
    (they are never bound, and ``dir()`` does not list them)."""
    subs = frozenset(submodules)
    gone = dict(moved or {})

    def __getattr__(name: str) -> Any:
        module_name = names.get(name)
        if module_name is not None:
            value = getattr(importlib.import_module(module_name), name)
            namespace[name] = value
            return value
        new_home = gone.get(name)
        if new_home is not None:
            warnings.warn(
                f"{package}.{name} moved to {new_home}.{name}; import it from there", DeprecationWarning, stacklevel=2
            )
            return getattr(importlib.import_module(new_home), name)
        if name in subs:
            return importlib.import_module(f"{package}.{name}")  # the import binds it in the package too
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names) | subs)

    return __getattr__, __dir__

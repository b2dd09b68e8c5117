"""Old module paths kept working after a venue's code moved into ``hkrt.adapters.<venue>``.

A shim module (``hkrt.fetcher.sina``, ``hkrt.broker.mail`` ...) imports the public names it always had
and sets ``__getattr__ = forward(...)``: any other name (a constant, a helper a test or a notebook
reached for) is looked up in the modules the code moved to, in order.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def forward(shim: str, *modules: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``shim`` that finds a name in ``modules`` (imported on first use)."""

    def __getattr__(name: str) -> Any:
        for module in modules:
            target = importlib.import_module(module)
            if hasattr(target, name):
                return getattr(target, name)
        raise AttributeError(f"module {shim!r} has no attribute {name!r}")

    return __getattr__

"""Old module paths of modules that moved into layer packages (issue 13): ``import hkrt.calendar``
keeps working and gives the very module ``hkrt.core.calendar`` is, not a copy, so a monkeypatch,
an ``isinstance`` or a pickle sees one set of objects whichever path a script used.

The finder below answers only for the names in :data:`MOVED`; it imports the new module on first
use (nothing is loaded by ``import hkrt``).  Type checkers do not follow it: typed code imports the
new paths (docs/architecture.md, "Packages by layer").
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

# old dotted path -> where the module lives now
MOVED: dict[str, str] = {
    "hkrt.china_time": "hkrt.core.china_time",
    "hkrt.calendar": "hkrt.core.calendar",
    "hkrt.ktype": "hkrt.core.ktype",
    "hkrt.lots": "hkrt.core.lots",
    "hkrt.columns": "hkrt.core.columns",
    "hkrt.logs": "hkrt.core.logs",
    "hkrt.synthetic": "hkrt.core.synthetic",
    "hkrt.wire": "hkrt.feed.wire",
    "hkrt.transport": "hkrt.feed.transport",
    "hkrt.journal": "hkrt.feed.journal",
    "hkrt.day_journal": "hkrt.feed.day_journal",
    "hkrt.retransmit": "hkrt.feed.retransmit",
    "hkrt.feed_auth": "hkrt.feed.feed_auth",
    "hkrt.server": "hkrt.feed.server",
    "hkrt.agent_history": "hkrt.agent.history",
    "hkrt.agent_backfill": "hkrt.agent.backfill",
    "hkrt.agent_recovery": "hkrt.agent.recovery",
    "hkrt.backfill": "hkrt.agent.history_sources",
    "hkrt.chart": "hkrt.notebook.chart",
    "hkrt.demo_strategy": "hkrt.strategy.demo",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old path to the module at its new one (the same object under both names)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        spec.loader_state = module.__spec__  # the import system overwrites __spec__: put it back below
        return module

    def exec_module(self, module: ModuleType) -> None:
        spec = module.__spec__
        if spec is not None and spec.loader_state is not None:
            module.__spec__ = spec.loader_state  # the module keeps its real name and origin


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (``import hkrt`` calls this)."""
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())

"""The replay's settings: the journal to play and how fast.

From a TOML table, ``HKRT_REPLAY_*`` or CLI flags through ``hkrt.adapters.registry.data_config("replay",
...)`` (``hkrt spot-server --source replay --replay FILE --speed 0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReplayConfig:
    path: Path
    speed: float = 1.0  # 2.0 plays twice as fast as recorded; 0 as fast as possible

    def __post_init__(self) -> None:
        if not isinstance(self.path, Path):
            object.__setattr__(self, "path", Path(self.path))
        if not self.speed >= 0:
            raise ValueError("speed must be 0 (as fast as possible) or positive")

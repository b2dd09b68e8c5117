"""The template venue's settings: a frozen dataclass, built by ``hkrt.adapters.registry`` from a TOML table
(``[template]`` of ``--config``), ``HKRT_TEMPLATE_*`` variables or CLI flags.

The registry converts strings to the field types (``"30"`` -> 30.0, ``"yes"`` -> True), refuses unknown
keys and names missing required fields; ``__post_init__`` checks what types cannot: raise ``ValueError``
with one line naming the setting and what it accepts.  Keep secrets out of ``repr`` (``field(repr=False)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TemplateConfig:
    base_url: str = "https://quotes.example.com"  # where the venue answers (a test server in tests)
    account: str = ""  # for the execution client: the account orders go to
    password: str | None = field(default=None, repr=False)  # never printed or logged
    timeout: float = 10.0  # seconds a request may take, whole

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, not {self.timeout:g}")

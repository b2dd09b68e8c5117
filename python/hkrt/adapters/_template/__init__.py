"""The skeleton of a venue adapter: copy this folder to ``hkrt/adapters/<venue>/`` (docs/adding-a-venue.md).

Every venue has these five files, and only these:

- ``config.py``: frozen dataclasses of its settings (one for the data client, one for the execution client,
  or one for both), with defaults and a ``__post_init__`` that refuses a bad value in one line;
- ``data.py``: ``make_data_client(config)``, the data client the spot server drives, or
  ``make_data_client = None`` and a docstring saying why the venue has none;
- ``execution.py``: ``make_execution_client(config)``, an ``OrderBrokerBase`` whose ``_buy(request)`` /
  ``_sell(request)`` map one ``OrderRequest`` and send it, or ``None`` likewise;
- ``mapping.py``: the venue's edge, and nothing else converts: symbol codes both ways, units (lots, 万元,
  epoch ms) into hkrt's (shares, yuan, naive China local time), the venue's order statuses into
  ``OrderStatus``;
- ``__init__.py`` (this file): the ``VENUE`` record, importing only ``config`` (cheap), so that asking the
  registry for one venue imports no other.

Then add the venue's name to ``hkrt.adapters.registry.VENUES``; tests/test_adapters_registry.py checks the
files, the record and the imports.  The template itself is not registered.
"""

from __future__ import annotations

from hkrt.adapters._template.config import TemplateConfig
from hkrt.adapters.base import Venue

VENUE = Venue(
    name="template",
    summary="a skeleton to copy (not registered)",
    data_config=TemplateConfig,
    execution_config=TemplateConfig,  # one config for both clients; a venue may have one for each
    takes_codes=True,  # a pull or push venue serves the code list of --codes
)

__all__ = ["VENUE"]

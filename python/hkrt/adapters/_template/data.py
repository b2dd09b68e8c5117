"""The template venue's data client.

A data client has ``serve(server, plan)``: publish through the spot server until the venue has no more or
``server.stop()``.  Three shapes exist; pick the one the venue speaks:

- pull (answers a request for quotes): a client with ``fetch(codes, batch_func=None) -> FetchReport``
  wrapped in ``hkrt.adapters.base.PullDataClient`` (the pull session re-asks missing codes and drops
  unknown ones), as ``hkrt.adapters.sina`` does; over HTTP subclass ``hkrt.fetcher.base.HttpFetcher``
  (``url``, ``parse``) and get the bounded client, retries and rate limit;
- push (calls back with changes): ``serve`` calls ``server.run_push(make_client, plan.codes)``, as
  ``hkrt.adapters.qmt`` does in push mode;
- a day of its own (simulated, recorded): ``serve`` calls ``server.run_sim`` / ``server.run_replay``.

A venue without quotes writes ``make_data_client = None`` here and sets ``no_data`` in its ``VENUE``.
"""

from __future__ import annotations

from hkrt.adapters._template.config import TemplateConfig
from hkrt.adapters.base import DataClient


def make_data_client(config: TemplateConfig) -> DataClient:
    """Build the data client from its config (the registry calls this)."""
    raise NotImplementedError("the template has no venue behind it: copy hkrt/adapters/_template and fill it in")

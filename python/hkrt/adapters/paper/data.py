"""The paper venue has no data client: it fills orders and publishes no quotes.

Paper trading runs on any source's quotes (``hkrt run --source sim|replay|feed``).  The venue's record says
so (``VENUE.no_data``).
"""

from __future__ import annotations

make_data_client = None

"""The easytrader venue has no data client: easytrader drives a trading client and publishes no quotes.

Pair it with a quote source (``hkrt spot-server --source qq|sina|qmt``).  The venue's record says so
(``VENUE.no_data``).
"""

from __future__ import annotations

make_data_client = None

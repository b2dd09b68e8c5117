"""The mail venue has no data client: it mails orders and publishes no quotes.

The venue's record says so (``VENUE.no_data``).
"""

from __future__ import annotations

make_data_client = None

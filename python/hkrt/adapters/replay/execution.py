"""The replay has no execution client: it plays a recorded journal and takes no orders.

Strategies trade a replayed day against the paper venue (``hkrt.adapters.paper``, ``hkrt run --broker
test``).  The venue's record says so (``VENUE.no_execution``).
"""

from __future__ import annotations

make_execution_client = None

"""The simulated market has no execution client: it plays quotes and takes no orders.

Strategies trade a simulated day against the paper venue (``hkrt.adapters.paper``, ``hkrt run --broker
test``).  The venue's record says so (``VENUE.no_execution``).
"""

from __future__ import annotations

make_execution_client = None

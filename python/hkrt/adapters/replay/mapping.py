"""The replay's edge: nothing to map.

A journal holds hkrt's own wire messages (``hkrt.feed.wire``): symbols, units and times are already
hkrt's, decoded by the wire module.  A replay takes no orders: no status to map.
"""

from __future__ import annotations

"""A strategy script that hangs on its first start (tests/test_node.py): while the file ``block-once`` sits next
to it, loading it removes that file and blocks for good, before the strategy ever writes a heartbeat.  Started
again (the marker gone) it is an ordinary strategy."""

import time
from pathlib import Path

import hkrt

_marker = Path(__file__).with_name("block-once")
if _marker.exists():
    _marker.unlink()
    while True:  # hung: no status.json, no subscription, nothing
        time.sleep(1.0)

strategy = hkrt.Strategy(codes=["SH600000"], ktypes=["MIN5"], cash=100_000)

"""A strategy script that cannot load (tests/test_node.py): ``hkrt run`` refuses it in one line, status 1."""

raise RuntimeError("this strategy is broken on purpose")

"""The paper venue's edge: nothing to map.

Orders arrive in hkrt's units (yuan per share, shares, ``SH``/``SZ``/``BJ`` + six digits) and the paper
account keeps them so; its order ids are ``T000001``..., every order is Filled or Rejected at once.
"""

from __future__ import annotations

"""Venue adapters: one package per venue, every one of the same shape (docs/adding-a-venue.md).

``hkrt/adapters/<venue>/`` holds ``config.py`` (typed config dataclasses), ``data.py`` (the data client
the spot server drives), ``execution.py`` (the execution client, an ``OrderBrokerBase``), ``mapping.py``
(symbol codes, units and statuses converted at the venue's edge) and ``__init__.py`` (its ``VENUE``
record).  A venue without data or execution says so in its record and in the file.  ``_template/`` is
the documented skeleton to copy; :mod:`hkrt.adapters.registry` builds clients by name.

Nothing is imported here: ``import hkrt`` and ``import hkrt.adapters`` load no venue.
"""

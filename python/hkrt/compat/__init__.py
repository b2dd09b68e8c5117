"""Shapes and calls of other projects, at hkrt's edge (docs/hikyuu-migration.md).

Each module converts to and from one project's conventions; nothing inside hkrt depends on them.
"""

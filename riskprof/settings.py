"""Temporary alias of :mod:`settings` while the last importers move; removed once they have."""

from settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]

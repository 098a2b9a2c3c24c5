"""riskprof application package: the CLI and settings."""

from riskprof.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]

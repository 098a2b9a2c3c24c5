"""riskprof application package: the command line only (settings live in :mod:`settings`)."""

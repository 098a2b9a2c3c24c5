"""riskprof: features."""

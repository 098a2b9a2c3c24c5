"""riskprof: synthetic."""

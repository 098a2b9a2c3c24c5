"""riskprof: reports."""

"""riskprof: serving."""

"""riskprof: training."""

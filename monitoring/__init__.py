"""The learning loop's measurements: monitoring of recorded selections and outcomes, and the simulator.

``build_monitoring`` computes every monitoring figure from plain frames (the CLI and the API both
call it); ``run_simulation`` replays a synthetic stream with drift to compare selection strategies.
"""

from monitoring.build import build_monitoring, join_outcomes, normalise_selections, week_start
from monitoring.inputs import (
    declaration_features,
    selections_from_audit,
    selections_from_batch,
    split_by_date,
)
from monitoring.metrics import (
    ECE_BAND,
    PSI_BANDS,
    hit_rate,
    ipw_rate,
    precision_at_rate,
    psi,
    psi_band,
    psi_table,
    reliability,
    wilson_interval,
)
from monitoring.report import (
    render_monitoring_html,
    render_simulation_html,
    write_monitoring,
    write_simulation,
)
from monitoring.simulate import SimulationConfig, build_stream, run_simulation

__all__ = [
    "ECE_BAND",
    "PSI_BANDS",
    "SimulationConfig",
    "build_monitoring",
    "build_stream",
    "declaration_features",
    "hit_rate",
    "ipw_rate",
    "join_outcomes",
    "normalise_selections",
    "precision_at_rate",
    "psi",
    "psi_band",
    "psi_table",
    "reliability",
    "render_monitoring_html",
    "render_simulation_html",
    "run_simulation",
    "selections_from_audit",
    "selections_from_batch",
    "split_by_date",
    "week_start",
    "wilson_interval",
    "write_monitoring",
    "write_simulation",
]

"""Synthetic default data calibrated to the WCO Illicit Trade Report 2023 (weapons section).

``generate`` writes seizures, declarations and outcomes as Parquet; the pieces are public too.
See ``synthetic/PATTERNS.md`` for the calibration choices and the planted risk patterns.
"""

from synthetic._declarations import PLANTED_PATTERNS, build_declarations, generate_declarations
from synthetic._drift import DRIFT_KINDS, apply_drift, generate_drifted, parse_drift
from synthetic._generate import generate
from synthetic._seizures import generate_seizures
from synthetic.figures import load_figures

__all__ = ["DRIFT_KINDS", "PLANTED_PATTERNS", "apply_drift", "build_declarations", "generate", "generate_declarations", "generate_drifted",
           "generate_seizures", "load_figures", "parse_drift"]

"""One row through LightGBM's single-row prediction (its C API's ``PredictForMatSingleRowFast``).

The API scores one declaration per call. ``Booster.predict`` on a one-row matrix spends ~20 µs in
its Python wrapper (argument checks, a predictor object, output reshaping) around ~5 µs of
prediction, and more when the request has left its code out of the CPU's caches. The fast
single-row entry point is LightGBM's own: it parses the prediction parameters once (``FastInit``)
and then predicts a row from a pointer to its values, in the same C++ predictor ``predict`` uses
(``tests/test_single_row.py`` checks the two give the same bits, missing values and categories
included).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _safe_call

_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL: the transformed score (a probability), as Booster.predict
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class SingleRowPredictor:
    """``booster.predict(row[None, :])[0]`` for one float64 row, without the wrapper's per-call work."""

    def __init__(self, booster: lgb.Booster, num_threads: int = 1):
        self.booster = booster  # the handle below lives as long as the booster does
        self.n_features = booster.num_feature()
        self._config = ctypes.c_void_p()
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0), ctypes.c_int(-1),
            ctypes.c_int(_FLOAT64), ctypes.c_int32(self.n_features),
            ctypes.c_char_p(f"num_threads={int(num_threads)}".encode()), ctypes.byref(self._config)))
        self._lock = threading.Lock()  # ctypes lets go of the GIL: one call at a time on the shared config

    def predict(self, row: np.ndarray) -> float:
        row = np.ascontiguousarray(row, dtype=np.float64)
        if row.shape != (self.n_features,):
            raise ValueError(f"one row of {self.n_features} features expected, got shape {row.shape}")
        out = np.empty(1, dtype=np.float64)
        out_len = ctypes.c_int64()
        with self._lock:
            _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFast(
                self._config, row.ctypes.data_as(ctypes.c_void_p), ctypes.byref(out_len),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))))
        return float(out[0])

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            _LIB.LGBM_FastConfigFree(config)
            config.value = None

    def __getstate__(self) -> Any:
        raise TypeError("a SingleRowPredictor holds a C handle: build it again where the model is loaded")

"""The fitted risk model: feature pipeline + LightGBM + calibration, as one object.

A :class:`RiskModel` is what training logs to MLflow and what the API and batch scoring load. It
is pure: no I/O, no FastAPI, no MLflow.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.pipeline import FeaturePipeline
from scoring.family_shap import FamilyShapTables, build_tables
from scoring.single_row import SingleRowPredictor


@dataclass
class Calibrator:
    """Isotonic map from raw LightGBM probability to calibrated probability (piecewise linear).

    Isotonic regression is a step function: on its flat steps many items would share one score and
    the top of the ranking would be ordered arbitrarily (on the Korean data, precision at 1 % fell
    from 0.95 to 0.90). A weight of ``TIE_BREAK`` on the raw probability keeps the map strictly
    increasing, so the ranking is the model's own, while the probability moves by at most 1e-6.
    """

    x: np.ndarray
    y: np.ndarray
    TIE_BREAK = 1e-6

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        if len(self.x) < 2:
            return raw
        return (1.0 - self.TIE_BREAK) * np.interp(raw, self.x, self.y) + self.TIE_BREAK * np.asarray(raw)


@dataclass
class Reason:
    family: str
    contribution: float
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"family": self.family, "contribution": round(float(self.contribution), 4), "text": self.text}


@dataclass
class Scored:
    """Scores of a batch, with what is needed to explain any of its rows."""

    cols: Mapping[str, np.ndarray]
    feats: Mapping[str, np.ndarray]
    X: np.ndarray
    raw: np.ndarray
    risk: np.ndarray


PREDICT_BLOCK = 16_384  # rows a predict call takes when chunks share the threads (ThreadShare)


class RowBlocks:
    """A feature matrix as consecutive row blocks, each column-major and contiguous: what LightGBM
    predicts block by block without copying (a row block of one column-major matrix is strided, and
    LightGBM copied each: ~5 % of a 68-tree model's predict). Rows are read as from the whole matrix:
    ``X[rows]`` gives them as one array."""

    def __init__(self, blocks: Sequence[np.ndarray]):
        self.blocks = list(blocks)
        self.starts = np.cumsum([0] + [len(b) for b in self.blocks])
        width = self.blocks[0].shape[1] if self.blocks else 0
        self.shape = (int(self.starts[-1]), width)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> np.ndarray:
        rows = np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.shape[1]), dtype=np.float64)
        which = np.searchsorted(self.starts, rows, side="right") - 1
        for b in np.unique(which):
            at = np.flatnonzero(which == b)
            out[at] = self.blocks[b][rows[at] - self.starts[b]]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = np.concatenate(self.blocks) if self.blocks else np.empty(self.shape)
        return whole if dtype is None else whole.astype(dtype)


class ThreadShare:
    """LightGBM threads shared by the chunks one process scores at once on threads (batch's pipelined
    engine): a chunk asks before each block of rows how many threads are its share *now*, so when one
    chunk is left in flight it predicts with all of them instead of leaving a core idle."""

    def __init__(self, total: int):
        self.total = max(1, int(total))
        self.busy = 0
        self._lock = threading.Lock()

    def threads(self) -> int:
        return max(1, self.total // max(self.busy, 1))

    @contextmanager
    def scoring(self) -> Iterator[None]:
        """One chunk being scored for the duration of the block."""
        with self._lock:
            self.busy += 1
        try:
            yield
        finally:
            with self._lock:
                self.busy -= 1


@dataclass
class RiskModel:
    pipeline: FeaturePipeline
    booster: lgb.Booster
    calibrator: Calibrator
    reference_scores: np.ndarray  # sorted calibrated scores of recent traffic (for percentiles)
    metadata: dict[str, Any] = field(default_factory=dict)
    num_threads: int = 1

    # ---- scoring -------------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return list(self.pipeline.feature_names_)

    def features(self, data: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        return self.pipeline.transform(data)

    def score_batch(self, data: pd.DataFrame | Sequence[Mapping[str, Any]]) -> Scored:
        cols = self.pipeline.columns(data)
        feats = self.pipeline.transform_columns(cols)
        buf = self._matrix_buffer(feats)
        X: Any
        if buf is not None and "_thread_share" in self.__dict__:  # predicted block by block: blocks apart
            X = RowBlocks(self.pipeline.matrix_blocks(feats, PREDICT_BLOCK, buf))
        else:
            X = self.pipeline.matrix(feats, buf)
        raw = self.predict_raw(X)
        return Scored(cols, feats, X, raw, self.calibrator(raw))

    def _matrix_buffer(self, feats: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """This thread's matrix buffer while a batch run reuses them (:meth:`reusing_matrices`), else None."""
        pool = self.__dict__.get("_matrix_buffers")
        if pool is None or not feats:
            return None
        need = len(next(iter(feats.values()))) * len(self.pipeline.feature_names_)
        buf = getattr(pool, "buf", None)
        if buf is None or buf.size < need:
            buf = pool.buf = np.empty(need, dtype=np.float64)
        return buf

    @contextmanager
    def reusing_matrices(self) -> Iterator[None]:
        """Within: each thread builds its feature matrices in one buffer of its own, reused from one
        :meth:`score_batch` to the next. Only for callers done with a :class:`Scored` (its ``X``)
        before they score again on the same thread: a batch chunk is (the API is not, and does not)."""
        if "_matrix_buffers" in self.__dict__:  # already within
            yield
            return
        self.__dict__["_matrix_buffers"] = threading.local()
        try:
            yield
        finally:
            self.__dict__.pop("_matrix_buffers", None)

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        if not len(X):
            return np.zeros(0)
        share = self.__dict__.get("_thread_share")
        if share is None and len(X) == 1 and isinstance(X, np.ndarray):
            return np.array([self._single_row().predict(X[0])])  # the API's one declaration
        if share is None:
            return np.asarray(self.booster.predict(X, num_threads=self.num_threads), dtype=np.float64)
        # chunks scored on several threads at once: each block of rows takes this chunk's share of the
        # threads as it is now, so the last chunk in flight gets them all (rows are independent; a row
        # block of the column-major matrix is copied by LightGBM: ~4 % of a 68-tree model's predict)
        out = np.empty(len(X))
        if isinstance(X, RowBlocks):
            for start, block in zip(X.starts, X.blocks, strict=False):
                out[start:start + len(block)] = self.booster.predict(block, num_threads=share.threads())
            return out
        for s in range(0, len(X), PREDICT_BLOCK):
            out[s:s + PREDICT_BLOCK] = self.booster.predict(X[s:s + PREDICT_BLOCK], num_threads=share.threads())
        return out

    def _single_row(self) -> SingleRowPredictor:
        single = self.__dict__.get("_single_row_predictor")
        if single is None:
            single = self.__dict__["_single_row_predictor"] = SingleRowPredictor(self.booster, self.num_threads)
        return single

    def predict(self, data: pd.DataFrame | Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Calibrated probability of a hit for each declaration."""
        return self.score_batch(data).risk

    def percentile(self, risk: np.ndarray) -> np.ndarray:
        ref = self.reference_scores
        if not len(ref):
            return np.full(len(risk), np.nan)
        return 100.0 * np.searchsorted(ref, risk, side="right") / len(ref)

    # ---- reasons -------------------------------------------------------------------------------
    def contributions(self, X: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions (log-odds), one column per feature plus the bias."""
        return np.asarray(self.booster.predict(X, pred_contrib=True, num_threads=self.num_threads))

    def explain(self, scored: Scored, rows: Sequence[int] | np.ndarray, top_k: int = 4,
                min_k: int = 3) -> list[list[Reason]]:
        """Top families pushing each row's risk up (at least ``min_k``, at most ``top_k``), in plain language."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return []
        fam_names, fam_index, _member = self._family_matrix()
        by_family = self.family_contributions(scored.X[rows])
        out: list[list[Reason]] = []
        for r, i in enumerate(rows):
            order = np.argsort(-by_family[r])
            chosen = [fam_names[k] for k in order[:top_k] if by_family[r, k] > 0]
            if len(chosen) < min_k:
                # too few families raise this item's risk: complete with those that weigh most
                # either way, so an officer always sees what drove the score (contribution < 0
                # means it lowered the risk)
                rest = [fam_names[k] for k in np.argsort(-np.abs(by_family[r])) if fam_names[k] not in chosen]
                chosen += rest[: min_k - len(chosen)]
            texts = self.pipeline.reasons(scored.cols, scored.feats, int(i), chosen)
            out.append([Reason(f, by_family[r, fam_index[f]], t) for f, t in zip(chosen, texts, strict=True)])
        return out

    def family_contributions(self, X: np.ndarray) -> np.ndarray:
        """(rows × families, in ``_family_matrix`` order) each family's Shapley value in log-odds: exact
        TreeSHAP with the families as players, from tables built once per loaded model
        (:mod:`scoring.family_shap`, ~4× faster than ``pred_contrib`` on a 300-tree model). A model
        whose paths split on too many families for the tables falls back to summing ``pred_contrib``
        over each family's features."""
        tables = self.__dict__.get("_family_shap_tables")
        if tables is None:
            fam_names, _fam_index, member = self._family_matrix()
            try:
                tables = build_tables(self.booster, member.argmax(axis=1), len(fam_names))
            except ValueError:
                tables = False
            self.__dict__["_family_shap_tables"] = tables
        if not isinstance(tables, FamilyShapTables):
            return self.contributions(X)[:, :-1] @ self._family_matrix()[2]
        return tables.contributions(X)

    def prepare_reasons(self) -> None:
        """Build the family TreeSHAP tables now (training does, before logging the model: a loaded model
        then explains its first item at once, in the API, a batch run, a worker or a Spark task)."""
        self.family_contributions(np.zeros((1, len(self.pipeline.feature_names_))))

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with the family tables if they were built (:meth:`prepare_reasons`), without the
        rest of what is attached while scoring (a batch run's thread share holds a lock)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_families_cache", "_thread_share",
                                                                 "_matrix_buffers", "_single_row_predictor")}

    def _family_matrix(self) -> tuple[list[str], dict[str, int], np.ndarray]:
        """Feature → family membership (features × families), built once per loaded model."""
        cached = self.__dict__.get("_families_cache")
        if cached is None:
            fam_names = sorted(set(self.pipeline.family_of_.values()))
            fam_index = {f: i for i, f in enumerate(fam_names)}
            member = np.zeros((len(self.pipeline.feature_names_), len(fam_names)))
            for j, name in enumerate(self.pipeline.feature_names_):
                member[j, fam_index[self.pipeline.family_of_[name]]] = 1.0
            cached = (fam_names, fam_index, member)
            self.__dict__["_families_cache"] = cached
        return cached

    def unseen(self, scored: Scored) -> list[dict[str, list]]:
        return self.pipeline.unseen_values(scored.cols)

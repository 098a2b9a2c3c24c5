"""Base class of feature families (scikit-learn conventions: fitted state ends with ``_``)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import repeat
from typing import ClassVar, Self

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from features._asof import ARROW_MIN_UNIQUES, NO_DAY, AsOfTable, Factorized, str_codes
from features._columns import per_unique
from features.history import History

Columns = Mapping[str, np.ndarray]
SMOOTHING = 20.0
#: while set (by :meth:`FeaturePipeline.outcome_counts`), each :class:`OutcomeFeatures` look-up also
#: leaves the past inspections and hits it read here, under its prefix
OUTCOME_COUNTS: ContextVar[dict[str, dict[str, np.ndarray]] | None] = ContextVar("outcome_counts", default=None)


class CategoryCodes:
    """Frequent values → integer codes (as float); rare, unseen or missing → NaN."""

    def __init__(self, values: np.ndarray, min_count: int = 5):
        uniq, counts = np.unique(np.array([v for v in values if v is not None], dtype=object).astype(str),
                                 return_counts=True)
        keep = uniq[counts >= min_count]
        self.vocab_: dict[str, float] = {v: float(i) for i, v in enumerate(keep)}

    def encode(self, values: np.ndarray | Factorized) -> np.ndarray:
        if isinstance(values, Factorized):
            if values.arrow_uniques is not None and values.n_uniques >= ARROW_MIN_UNIQUES:
                return values.spread(str_codes(self.vocab_, self.__dict__, values.arrow_uniques, np.nan), np.nan)
            return values.spread(self.encode(values.uniques), np.nan)
        return np.fromiter(map(self.vocab_.get, values, repeat(np.nan)), dtype=np.float64, count=len(values))

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cache")}

    def unseen_mask(self, values: np.ndarray) -> np.ndarray:
        present = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
        return present & np.isnan(self.encode(values))


@dataclass(frozen=True)
class FamilyParams:
    """What a pipeline passes on to its families (:meth:`FeatureFamily.configured`)."""

    min_count: int
    extra_numeric: tuple[str, ...]
    extra_categorical: tuple[str, ...]
    entity_min_levels: int


class FeatureFamily(BaseEstimator):
    """A family of features: ``fit(history, train)`` builds look-ups, ``transform(cols)`` reads them.

    A family declares its feature names once, in ``features`` (the categorical ones among them in
    ``categorical_features``), in the order of the dict its ``transform`` returns; a family whose
    names depend on its parameters overrides :meth:`names_out`. Subclasses build their look-ups in
    ``_fit``; the base ``fit`` records the names. Adding a family: a module with the subclass, and
    the class appended to ``features.pipeline.FAMILIES``.
    """

    name = "family"
    label = "family"
    features: ClassVar[tuple[str, ...]] = ()
    categorical_features: ClassVar[tuple[str, ...]] = ()
    #: training keeps the family only where it raises validation AUC (not merely where removing it
    #: does not clearly lower it): for features whose pattern may not carry over to later periods
    must_help: ClassVar[bool] = False

    @classmethod
    def configured(cls, params: FamilyParams) -> FeatureFamily | None:
        """The unfitted family a pipeline with ``params`` uses (``None``: it has nothing to do)."""
        return cls()

    def _fit(self, history: History, train: Columns) -> None:
        raise NotImplementedError

    def fit(self, history: History, train: Columns) -> FeatureFamily:
        self._fit(history, train)
        self.feature_names_ = self.names_out()
        self.categorical_ = self.categorical_out()
        return self

    def names_out(self) -> tuple[str, ...]:
        return self.features

    def categorical_out(self) -> tuple[str, ...]:
        return self.categorical_features

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        raise NotImplementedError

    #: fitted attributes learned from the training rows (category vocabularies); a refresh keeps
    #: them, because the booster's splits refer to their codes
    vocabulary_attributes: tuple[str, ...] = ("codes_", "heading_codes_")

    def refresh(self, history: History, empty: Columns) -> FeatureFamily:
        """Rebuild the history look-ups from a newer history; keep the vocabularies."""
        check_is_fitted(self, "feature_names_")
        kept = {a: getattr(self, a) for a in self.vocabulary_attributes if hasattr(self, a)}
        self.fit(history, empty)
        for a, v in kept.items():
            setattr(self, a, v)
        return self

    def get_feature_names_out(self) -> list[str]:
        check_is_fitted(self, "feature_names_")
        return list(self.feature_names_)

    def groups(self) -> dict[str, list[str]]:
        """Feature names by the group training may leave out (by default the whole family is one)."""
        return {self.name: self.get_feature_names_out()}

    def without_groups(self, dropped: Collection[str]) -> FeatureFamily | None:
        """This fitted family without the ``dropped`` groups, its look-ups shared (``None``: nothing left)."""
        return None if self.name in dropped else self

    def unseen_values(self, cols: Columns) -> dict[str, np.ndarray]:
        """Per input column: a mask of rows whose value the fitted family never saw (by default the
        columns of its category vocabularies ``codes_``)."""
        return {c: enc.unseen_mask(cols[c]) for c, enc in getattr(self, "codes_", {}).items()}

    def reason(self, cols: Columns, feats: Mapping[str, np.ndarray], i: int) -> str:
        """Plain-language reason for row ``i``, from its raw values and feature values."""
        return self.label


class CodedFamily(FeatureFamily):
    """A family whose only parameter is its category vocabularies' ``min_count``: a value seen fewer
    times in the training rows is coded as missing."""

    def __init__(self, min_count: int = 5):
        self.min_count = min_count

    @classmethod
    def configured(cls, params: FamilyParams) -> Self:
        return cls(params.min_count)


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun`` in the reasons' words: "1 past inspection", "3 past inspections"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def token_max(table: AsOfTable, keys: np.ndarray | Factorized, tokens_of: Callable[[object], Iterable[str]],
              day: np.ndarray, value: str = "n") -> np.ndarray:
    """Per row, the largest ``value`` of the table among the tokens of the row's key (e.g. the
    countries of a transit path), as of the row's day; 0 for a key without tokens.

    Rows dated after the table's last event read its latest values, once per distinct key; the
    others look up each of their tokens on their own day.
    """
    out = np.zeros(len(day))
    after = table.after_last_event(day)
    if after.any():
        latest, vocab = table.latest()[value], table.encoder_.vocab_

        def per_key(ks: np.ndarray) -> np.ndarray:
            return np.fromiter((max((latest[vocab.get(t, -1)] for t in tokens_of(k)), default=0.0) for k in ks),
                               dtype=np.float64, count=len(ks))

        out = keys.spread(per_key(keys.uniques), 0.0) if isinstance(keys, Factorized) else per_key(keys)
        if after.all():
            return out
        out[~after] = 0.0
    inside = np.flatnonzero(~after)
    values = keys.values() if isinstance(keys, Factorized) else np.asarray(keys, dtype=object)
    row_tokens = per_unique(values[inside], lambda k: tuple(tokens_of(k)))
    counts = np.fromiter(map(len, row_tokens), dtype=np.int64, count=len(row_tokens))
    if counts.sum():
        owner = np.repeat(inside, counts)
        tk = np.fromiter((t for ts in row_tokens for t in ts), dtype=object, count=int(counts.sum()))
        np.maximum.at(out, owner, table.lookup(tk, day[owner])[value])
    return out


def is_missing(keys: np.ndarray | Factorized) -> np.ndarray:
    """Rows whose key is missing, as 1.0 / 0.0."""
    if isinstance(keys, Factorized):
        return (keys.codes < 0).astype(np.float64)
    return np.array([k is None for k in keys], dtype=np.float64)


def outcome_table(keys: np.ndarray, events: Mapping[str, np.ndarray], last_day_of: str | None = None) -> AsOfTable:
    """Inspections and hits per key among outcome events (``History.outcome_events``), as of a day."""
    return AsOfTable(keys, events["day"], {"insp": events["inspected"], "hit": events["hit"]}, last_day_of=last_day_of)


def rate(hits: np.ndarray, trials: np.ndarray, prior: np.ndarray | float) -> np.ndarray:
    """Hit rate shrunk toward ``prior`` (additive smoothing with SMOOTHING pseudo-trials)."""
    return (hits + SMOOTHING * prior) / (trials + SMOOTHING)


def days_since(last_day: np.ndarray, day: np.ndarray) -> np.ndarray:
    return np.where(last_day == NO_DAY, np.nan, day - last_day)


def outcome_stats(table: AsOfTable, keys: np.ndarray | Factorized, day: np.ndarray, prior: np.ndarray,
                  stats: Sequence[str]) -> dict[str, np.ndarray]:
    """Look-up → rate → ratio: the ``stats`` of the keys' past outcomes as of ``day``.

    ``inspections``, ``hits``, ``hit_rate`` (smoothed toward ``prior``), ``hit_ratio`` (that rate
    over the prior) and ``days_since_hit`` (the table needs ``last_day_of="hit"``).
    """
    h = table.lookup(keys, day)
    out: dict[str, np.ndarray] = {}
    for s in stats:
        if s == "inspections":
            out[s] = h["insp"]
        elif s == "hits":
            out[s] = h["hit"]
        elif s == "hit_rate":
            out[s] = rate(h["hit"], h["insp"], prior)
        elif s == "hit_ratio":
            out[s] = (out["hit_rate"] if "hit_rate" in out else rate(h["hit"], h["insp"], prior)) / prior
        elif s == "days_since_hit":
            out[s] = days_since(h["last_day"], day)
        else:
            raise ValueError(f"unknown outcome statistic {s!r}")
    return out


@dataclass(frozen=True)
class OutcomeFeatures:
    """Features from one outcome look-up, named ``<prefix>_<stat>`` (see :func:`outcome_stats`)."""

    prefix: str
    stats: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"{self.prefix}_{s}" for s in self.stats)

    def compute(self, table: AsOfTable, keys: np.ndarray | Factorized, day: np.ndarray,
                prior: np.ndarray) -> dict[str, np.ndarray]:
        stats = outcome_stats(table, keys, day, prior, self.stats)
        counts = OUTCOME_COUNTS.get()
        if counts is not None:  # the same table, keys and days as the features above
            h = table.lookup(keys, day)
            counts[self.prefix] = {"inspections": h["insp"], "hits": h["hit"]}
        return {f"{self.prefix}_{s}": v for s, v in stats.items()}


class GlobalRate:
    """As-of overall hit rate among inspected items (the prior of every smoothed rate).

    Families share one per history (:func:`global_rate`), and the rates of the last ``day`` array
    are kept: every family of a pipeline reads the same days, so the look-up runs once per batch.
    """

    def __init__(self, history: History):
        ev = history.outcome_events()
        keys = np.full(len(ev["day"]), "all", dtype=object)
        self.table_ = outcome_table(keys, ev)
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def at(self, day: np.ndarray) -> np.ndarray:
        last = getattr(self, "_last", None)  # one tuple, read once: safe with two chunks in flight
        if last is not None and last[0] is day:
            return last[1]
        r = self.table_.lookup(Factorized.constant("all", len(day)), day)
        prior = (r["hit"] + 1.0) / (r["insp"] + 50.0)  # weak prior of 2 % before any outcome
        self._last = (day, prior)
        return prior

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_last"}


def global_rate(history: History) -> GlobalRate:
    """The history's one :class:`GlobalRate`, built on first use."""
    if "global_rate" not in history._cache:
        history._cache["global_rate"] = GlobalRate(history)
    return history._cache["global_rate"]

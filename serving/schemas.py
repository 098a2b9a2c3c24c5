"""Request and response bodies of the API (with the examples shown in the OpenAPI docs).

Declarations and outcomes are the contract models of :mod:`features.contracts`. The request models
(:class:`ScoreRequest`, :class:`OutcomesRequest`, :class:`RankRequest`) are both what the OpenAPI
document shows and what :mod:`serving.parsing` validates bodies with, so the two cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from features.contracts import pydantic_model
from profiles.model import Profile, WatchList

Declaration = pydantic_model("declaration")
Outcome = pydantic_model("outcome")

Lane = Literal["red", "yellow", "green"]
_CAPACITY_CHARS = 32

# a list must hold at least one item (an empty one is answered 422); the most items per request is a
# setting (``max_items``, answered 413), so it is counted before validation rather than declared here
DeclarationList = Annotated[list[Declaration], Field(min_length=1)]  # type: ignore[valid-type]
OutcomeList = Annotated[list[Outcome], Field(min_length=1)]  # type: ignore[valid-type]

DECLARATION_EXAMPLE: dict[str, Any] = {
    "declaration_id": "D0000001",
    "declaration_date": "2023-06-01",
    "direction": "import",
    "office_id": "YE-ADE",
    "office_type": "seaport",
    "importer_id": "IMP000123",
    "declarant_id": "DCL0042",
    "origin_country": "CN",
    "departure_country": "CN",
    "transit_countries": ["AE"],
    "destination_country": "YE",
    "conveyance": "vessel",
    "hs_code": "820600",
    "goods_description": "hardware, lamp",
    "quantity": 1234,
    "gross_weight_kg": 5400.0,
    "customs_value": 8200.0,
    "currency": "USD",
}
OUTCOME_EXAMPLE: dict[str, Any] = {
    "declaration_id": "D0000001",
    "inspected_date": "2023-06-02",
    "inspected": True,
    "selection_source": "model",
    "selection_probability": 1.0,
    "hit": True,
    "case_id": "C2023-000123",
    "revenue": 0.0,
}
REASONS_EXAMPLE: Any = [
    {"family": "goods_cover", "contribution": 1.21,
     "text": "declared as hand tools (HS 8206), a heading used as cover in 14 past weapon seizures"},
    {"family": "route", "contribution": 0.64, "text": "route CN → AE → YE: seizure rate 9× the average"},
    {"family": "trader_history", "contribution": 0.18, "text": "importer IMP000123: 2 hits in 5 inspections"},
]
MODEL_EXAMPLE: dict[str, Any] = {"name": "riskprof", "version": "3", "alias": "champion"}


class ScoreRequest(RootModel[Declaration | DeclarationList]):  # type: ignore[valid-type]
    """One declaration or a list of them (declaration contract; extra columns allowed)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        DECLARATION_EXAMPLE,
        [DECLARATION_EXAMPLE, {**DECLARATION_EXAMPLE, "declaration_id": "D0000002", "importer_id": "NEW-TRADER",
                               "hs_code": "940360"}]]})


class OutcomesRequest(RootModel[Outcome | OutcomeList]):  # type: ignore[valid-type]
    """One outcome or a list of them (outcome contract)."""

    model_config = ConfigDict(json_schema_extra={"examples": [OUTCOME_EXAMPLE]})


class ModelRef(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [MODEL_EXAMPLE]})

    name: str
    version: str
    alias: str | None = None


class ReasonOut(BaseModel):
    family: str = Field(description="feature family: route, goods_cover, trader_history, ...")
    contribution: float = Field(description="the family's Shapley value in TreeSHAP's game with the feature families "
                                "as players, log-odds (> 0 raises risk; all families add up to the log-odds "
                                "minus the model's expected value)")
    text: str = Field(description="the reason in plain language")


class RuleHitOut(BaseModel):
    kind: Literal["profile", "watch_list"] = Field(description="a risk profile, or a watch list acting alone")
    id: str = Field(description="the profile id or watch-list name")
    version: int = Field(description="the version that matched (records keep pointing at it)")
    criterion: str = Field(description="the reason, in the profile author's words")


class ScoredDeclaration(BaseModel):
    declaration_id: str
    risk_score: float = Field(ge=0, le=1, description="calibrated probability of a hit")
    percentile: float | None = Field(None, description="percentile of the score among recent traffic (0-100)")
    lane: Lane = Field(description="red = physical examination, yellow = documentary check, green = release")
    reasons: list[ReasonOut] = Field(description="families pushing the score up, strongest first")
    unseen_values: dict[str, Any] = Field(
        default_factory=dict, description="input values the model never saw (scored as unknown, not rejected)")
    rule_hits: list[RuleHitOut] = Field(
        default_factory=list, description="risk profiles and watch lists that matched (they may raise the lane, "
                                          "never the score)")


class ScoreResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model": MODEL_EXAMPLE, "count": 1,
        "results": [{"declaration_id": "D0000001", "risk_score": 0.41, "percentile": 99.2, "lane": "red",
                     "reasons": REASONS_EXAMPLE, "unseen_values": {"importer_id": "IMP000123"}}]}]})

    model: ModelRef
    count: int
    results: list[ScoredDeclaration]


class RankParams(BaseModel):
    """The parameters of a manifest ranking (the declarations are validated on their own, item by item)."""

    model_config = ConfigDict(extra="forbid")

    capacity: str | float = Field(description='how many to inspect: a count (120), a fraction (0.05) or "5%"')
    random_share: float = Field(0.0, ge=0, le=1, allow_inf_nan=False,
                                description="share of the capacity drawn at random")
    seed: int = Field(0, ge=0, description="seed of the random draw (same manifest and seed → same draw)")
    reasons: Literal["all", "flagged", "none"] = Field(
        "flagged", description="reasons for all items, for red/yellow items only, or none")

    @field_validator("capacity", "random_share", "seed", mode="before")
    @classmethod
    def _not_a_boolean(cls, v: Any) -> Any:
        # JSON true is not 1 here, as for every number of a declaration (it was a capacity of 1)
        if isinstance(v, bool):
            raise ValueError(f"expected a number, got {str(v).lower()}")
        return v

    @field_validator("capacity")
    @classmethod
    def _finite_capacity(cls, v: str | float) -> str | float:
        # 1e400 in JSON is infinity; a string is parsed later, so only its length is bounded here
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("capacity must be a finite number")
        if isinstance(v, str) and len(v) > _CAPACITY_CHARS:
            raise ValueError(f"capacity is at most {_CAPACITY_CHARS} characters, e.g. 120, 0.05 or '5%'")
        return v


class RankRequest(RankParams):
    """The declarations of a manifest, the inspection capacity and the random share."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "declarations": [DECLARATION_EXAMPLE, {**DECLARATION_EXAMPLE, "declaration_id": "D0000002",
                                               "hs_code": "940360", "transit_countries": []}],
        "capacity": "5%", "random_share": 0.1, "seed": 0, "reasons": "flagged"}]})

    declarations: DeclarationList


REQUEST_MODELS: tuple[type[BaseModel], ...] = (ScoreRequest, OutcomesRequest, RankRequest)


class RankedDeclaration(ScoredDeclaration):
    rank: int = Field(description="1 = highest risk")
    selection: Literal["rule", "model", "random", "none"] = Field(
        description="why the item is (not) selected: a profile (rule), the model's ranking, the random share")
    selection_probability: float = Field(description="probability of selection under this policy (for IPW)")
    reasons: list[ReasonOut] | None = None  # type: ignore[assignment]


class LaneConfig(BaseModel):
    by: Literal["score", "capacity"]
    red: float = Field(description="score from which an item is red")
    yellow: float = Field(description="score from which an item is yellow")


class RankResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model": MODEL_EXAMPLE, "count": 2, "capacity": 1, "selected_model": 1, "selected_random": 0,
        "random_share": 0.1, "lanes": {"by": "score", "red": 0.3, "yellow": 0.1},
        "items": [
            {"rank": 1, "declaration_id": "D0000001", "risk_score": 0.41, "percentile": 99.2, "lane": "red",
             "selection": "model", "selection_probability": 1.0, "reasons": REASONS_EXAMPLE, "unseen_values": {}},
            {"rank": 2, "declaration_id": "D0000002", "risk_score": 0.01, "percentile": 31.0, "lane": "green",
             "selection": "none", "selection_probability": 0.0, "reasons": None, "unseen_values": {}},
        ]}]})

    model: ModelRef
    count: int
    capacity: int = Field(description="items to inspect")
    selected_model: int
    selected_random: int
    selected_rule: int = Field(0, description="selected by risk profiles first (counted in capacity, may exceed it)")
    random_share: float
    lanes: LaneConfig
    items: list[RankedDeclaration] = Field(description="ranked, highest risk first")


class OutcomeStatus(BaseModel):
    declaration_id: str
    status: Literal["created", "unchanged"]


class OutcomesResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "created": 1, "unchanged": 0, "items": [{"declaration_id": "D0000001", "status": "created"}],
        "unknown_declaration_ids": []}]})

    created: int
    unchanged: int
    items: list[OutcomeStatus]
    unknown_declaration_ids: list[str] = Field(
        default_factory=list, description="declarations this service never scored (not in its audit log): "
                                          "recorded all the same; check the id if it should have been scored here")


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        **MODEL_EXAMPLE, "uri": "models:/riskprof/3", "run_id": "0a1b2c", "label": "hit",
        "training_period": ["2022-01-01", "2023-06-30"], "validation_period": ["2023-07-07", "2023-09-30"],
        "test_period": ["2023-10-07", "2023-12-31"], "history_cutoff": "2023-12-31",
        "metrics": {"auc": 0.91, "precision_at": {"5": 0.32}}, "loaded_at": "2024-01-02T08:00:00+00:00",
        "lanes": {"by": "score", "red": 0.3, "yellow": 0.1}, "features": ["route_hit_rate", "..."]}]})

    name: str
    version: str
    alias: str | None = None
    uri: str
    run_id: str | None = None
    label: str | None = None
    training_period: list[str] | None = None
    validation_period: list[str] | None = None
    test_period: list[str] | None = None
    history_cutoff: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    features: list[str] = Field(default_factory=list)
    loaded_at: str
    lanes: LaneConfig


class ReloadResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "changed": True, "previous": {**MODEL_EXAMPLE, "version": "2"}, "model": MODEL_EXAMPLE}]})

    changed: bool = Field(description="false when the alias still points at the loaded version")
    previous: ModelRef | None
    model: ModelRef


class Health(BaseModel):
    """Liveness only: anyone may call it, so it names no model (see /ready and /v1/model)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


class Ready(BaseModel):
    ready: bool
    model_loaded: bool
    store_reachable: bool
    model: ModelRef | None = None
    audit_backlog: int = Field(0, description="scoring calls answered but not yet written to the audit log")
    alias_behind: dict[str, Any] | None = Field(
        None, description="the alias points at a version this server could not load or that failed its smoke "
                          "test (alias, version, problem, serving: the version still served); a load failure "
                          "is tried again with growing pauses, a smoke-test failure is not")


class TrendsResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "years": [2022, 2023],
        "tables": {"totals": [{"year": 2022, "cases": 2410, "seizures": 3011, "quantity": 91234.0},
                              {"year": 2023, "cases": 2634, "seizures": 3290, "quantity": 101110.0}],
                   "by_region": [{"region": "Europe", "year": 2023, "cases": 1300, "seizures": 1620,
                                  "quantity": 40000.0}]}}]})

    years: list[int] | None = Field(description="the years asked for (null = all years in the data)")
    tables: dict[str, list[dict[str, Any]]] = Field(description="table name → rows")


class ProfileStats(BaseModel):
    """Effectiveness of one profile: every field is present, null where nothing was inspected."""

    kind: Literal["profile"]
    rule_id: str
    versions: list[int] = Field(description="the versions that matched in the period")
    matches: int
    inspections: int
    hits: int
    hit_rate: float | None = Field(description="hits / inspections (null without an inspection)")
    hit_rate_low: float | None = Field(description="95 % Wilson interval of hit_rate")
    hit_rate_high: float | None
    model_inspections: int | None = Field(description="model-selected inspections over the same days")
    model_hits: int | None
    model_hit_rate: float | None
    model_hit_rate_low: float | None
    model_hit_rate_high: float | None
    candidate_for_retirement: bool = Field(description="30 inspections or more and no hit")
    status: Literal["draft", "active", "retired"]
    since: dt.date | None
    until: dt.date | None


class ProblemOut(BaseModel):
    item: int | None = Field(None, description="0-based index of the item in a list (absent for one object)")
    field: str = Field(description="the bad field, e.g. hs_code or declarations.hs_code")
    message: str
    value: Any = None


class ValidationErrorBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": [
        {"item": 3, "field": "hs_code", "message": "'12' is not an HS code of 6 to 10 digits", "value": "12"}]}]})

    detail: list[ProblemOut]


class Alert(BaseModel):
    """An alert a profile or watch list raised on a declaration (one per declaration and rule version)."""

    id: int
    created_at: dt.datetime = Field(description="when it was raised (UTC, with its offset)")
    declaration_id: str
    kind: Literal["profile", "watch_list"]
    rule_id: str = Field(description="the profile's id or the watch list's name")
    version: int = Field(description="the rule's version that fired")
    criterion: str = Field(description="what the rule looks for, in its writer's words")
    risk_score: float | None
    lane: Literal["red", "yellow", "green"] | None
    source: str = Field(description="where the declaration was scored (API endpoint or batch run)")
    status: Literal["open", "acked"]
    acked_at: dt.datetime | None
    acked_by: str | None


class AlertList(BaseModel):
    count: int
    alerts: list[Alert]


class ProfileList(BaseModel):
    count: int
    profiles: list[Profile]


class WatchListList(BaseModel):
    count: int
    watch_lists: list[WatchList]


class ProfileChange(BaseModel):
    """One entry of a profile's change log."""

    id: int
    created_at: dt.datetime = Field(description="when (UTC, with its offset)")
    actor: str = Field(description="the key's name")
    role: str
    kind: Literal["profile", "watch_list"]
    rule_id: str
    version: int
    action: str = Field(description="create, change, retire…")


class ProfileDetail(Profile):
    """One version of a profile (the latest unless ``?version=``), with every version number and the change log."""

    versions: list[int]
    changes: list[ProfileChange]


class WatchListDetail(WatchList):
    """The latest version of a watch list, with every version number."""

    versions: list[int]


class HitRate(BaseModel):
    inspections: int
    hits: int
    rate: float | None = Field(description="hits / inspections (null without an inspection)")
    low: float | None = Field(description="95 % Wilson interval")
    high: float | None


class IpwRate(BaseModel):
    estimate: float | None = Field(description="inverse-propensity-weighted hit rate of all traffic (null without "
                                               "random-stratum inspections)")
    low: float | None
    high: float | None
    random_inspections: int
    weighted_items: float | None


class PrecisionAtRate(BaseModel):
    rate: float = Field(description="the inspection rate, a fraction")
    threshold: float | None = Field(description="the lowest score in the top rate of all scored items")
    top_items: int
    labelled: int = Field(description="top items with an outcome")
    precision: float | None
    coverage: float | None = Field(description="labelled / top_items")


class CalibrationBin(BaseModel):
    bin_low: float
    bin_high: float
    count: int
    weight: float | None
    predicted: float | None
    observed: float | None


class Calibration(BaseModel):
    bins: list[CalibrationBin]
    ece: float | None = Field(description="expected calibration error (model- and random-selected items)")
    items: int


class LaneVolumes(BaseModel):
    red: int
    yellow: int
    green: int
    scored: int


class MonitoringFigures(BaseModel):
    """The figures of one week, or of the whole period."""

    inspections: int
    hits: int
    hit_rate: HitRate
    by_source: dict[str, HitRate] = Field(description="model, rule, random, officer (and unknown, when some "
                                                      "outcomes have no source)")
    ipw_overall: IpwRate
    precision_at_rate: PrecisionAtRate
    calibration: Calibration
    lanes: LaneVolumes


class MonitoringWeek(MonitoringFigures):
    week: str = Field(description="the Monday the week starts on (YYYY-MM-DD)")


class DriftRow(BaseModel):
    feature: str
    psi: float | None
    band: str = Field(description="stable, moderate or significant")


class Monitoring(BaseModel):
    """What GET /v1/monitoring answers, as ``riskprof monitor`` writes it (docs/monitoring.md)."""

    since: str | None
    inspection_rate: float
    rescored_records: int = Field(description="selection records of declarations scored more than once (the "
                                              "latest counts)")
    ece_band: float
    psi_bands: list[float]
    weeks: list[MonitoringWeek]
    overall: MonitoringFigures
    drift: list[DriftRow] | None
    warnings: list[str]


class PreconditionFailedBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "detail": "profile 'P-TOOLS' is at version 3, not 2: another change came first; nothing was stored, read "
                  "it again and make the change on the latest version", "current_version": 3}]})

    detail: str
    current_version: int | None = Field(description="the latest version now (GET it again and make the change on it); "
                                                    "null when If-Match named no version")


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"detail": "no model is loaded"}]})

    detail: str

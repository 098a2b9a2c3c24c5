"""The scoring service: the loaded model, scoring, ranking, outcomes and reloads. No FastAPI here.

The model is held as one immutable :class:`ServedModel`; a reload builds a new one (loaded and
smoke-tested) and swaps the reference, so a request in flight keeps the model it started with and
a broken version never replaces a working one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from profiles import RuleSet
from profiles.decide import Decision, alert_records, decide
from scoring import LaneThresholds, ScoreTable, capacity_count, score_table
from scoring.registry import LoadedModel
from serving.errors import FieldProblem, InputError, ModelNotFound, ModelRejected, NoModelLoaded, UnknownModel
from serving.profile_store import ProfileStore, insert_alerts
from serving.roles import Principal
from serving.settings import ServingSettings
from serving.store import AuditEvent, AuditWriter, Store

log = logging.getLogger("riskprof.serving")

#: the longest pause before the poller tries again a version the alias points at that failed to load
MAX_LOAD_RETRY_SECONDS = 600.0

Loader = Callable[[str], LoadedModel]
Resolver = Callable[[str], tuple[str, str, str | None]]

# scored on every (re)load before a model is accepted: a full and a minimal declaration, plus an
# unseen trader and route, through the same validation as a request
SMOKE_SAMPLE: list[dict[str, Any]] = [
    {"declaration_id": "SMOKE-1", "declaration_date": "2023-06-01", "direction": "import", "office_id": "YE-ADE",
     "office_type": "seaport", "importer_id": "IMP000123", "declarant_id": "DCL0042", "origin_country": "CN",
     "departure_country": "CN", "transit_countries": ["AE"], "destination_country": "YE", "conveyance": "vessel",
     "hs_code": "820600", "goods_description": "hardware, lamp", "quantity": 1234, "gross_weight_kg": 5400.0,
     "customs_value": 8200.0, "currency": "USD"},
    {"declaration_id": "SMOKE-2", "declaration_date": "2023-06-01", "hs_code": "940360"},
    {"declaration_id": "SMOKE-3", "declaration_date": "2023-06-01", "hs_code": "930120", "importer_id": "NEW-TRADER",
     "departure_country": "NZ", "destination_country": "IS", "conveyance": "mail", "gross_weight_kg": 2.0,
     "customs_value": 15.0},
]


def _default_loader(uri: str) -> LoadedModel:
    from scoring.registry import load_risk_model

    return load_risk_model(uri)


def _default_resolver(uri: str) -> tuple[str, str, str | None]:
    from scoring.registry import resolve_version

    return resolve_version(uri)


@dataclass(frozen=True)
class ServedModel:
    loaded: LoadedModel
    thresholds: LaneThresholds
    loaded_at: dt.datetime

    @property
    def ref(self) -> dict[str, Any]:
        return {"name": self.loaded.name, "version": self.loaded.version, "alias": self.loaded.alias}

    def lanes(self, by: str) -> dict[str, Any]:
        return {"by": by, "red": self.thresholds.red, "yellow": self.thresholds.yellow}


def lane_thresholds(settings: ServingSettings, reference_scores: np.ndarray) -> LaneThresholds:
    """Thresholds from configuration: fixed scores, or the scores at the configured shares of recent traffic."""
    return settings.lanes.thresholds(reference_scores)


def _round(x: float, digits: int = 6) -> float | None:
    return None if not math.isfinite(x) else round(x, digits)


class ScoringService:
    """Wraps the served model; every public method returns JSON-able dicts."""

    def __init__(self, settings: ServingSettings, store: Store, loader: Loader = _default_loader,
                 resolver: Resolver = _default_resolver):
        self.settings = settings
        self.store = store
        self._loader = loader
        self._resolver = resolver
        self._served: ServedModel | None = None
        self._reload_lock = threading.Lock()
        self.last_error: str | None = None
        # the alias points at a version this server could not take (it serves the one before): said by
        # /ready and /v1/model, so a stale version is never passed off as what the alias names
        self.alias_behind: dict[str, Any] | None = None
        self._audit = AuditWriter(store) if settings.audit_mode == "background" else None
        self._poller: threading.Thread | None = None
        self._stop_polling = threading.Event()
        self.profiles = ProfileStore(store.engine)
        self._rules: _CachedRules | None = None
        self._rules_lock = threading.Lock()

    # ---- audit ---------------------------------------------------------------------------------
    def _record(self, event: AuditEvent, alerts: Sequence[Mapping[str, Any]] = ()) -> None:
        """The call's audit event and the alerts it raises: in one transaction with the durable (sync)
        audit, so an alerting call commits once; the background writer takes the event alone."""
        if self._audit is not None:
            self._audit.submit(event)
            if alerts:
                self.profiles.create_alerts(alerts)
        elif alerts:
            self.store.append_audit_events([event], also=lambda conn: insert_alerts(conn, alerts))
        else:
            self.store.append_audit_events([event])

    def flush_audit(self, timeout: float = 30.0) -> bool:
        """Wait until every audit event so far is in the store."""
        return self._audit.flush(timeout) if self._audit is not None else True

    def start_polling(self) -> None:
        """Follow the alias: every ``model_poll_seconds``, load the version it points at if it changed."""
        interval = self.settings.model_poll_seconds
        if interval <= 0 or self._poller is not None:
            return

        def poll() -> None:
            rejected: set[str] = set()  # failed the smoke test: the same artifact fails it again
            retry: dict[str, tuple[int, float]] = {}  # failed to load (a file not there yet?): attempts, next try
            while not self._stop_polling.wait(interval):
                now = time.monotonic()
                try:
                    result = self.reload(skip_versions=rejected | {v for v, (_, at) in retry.items() if now < at})
                    if result["changed"]:
                        log.info("alias moved: now serving version %s", result["model"]["version"])
                        retry.clear()
                except ModelRejected as exc:
                    version = str(exc.extra.get("rejected_version"))
                    if exc.extra.get("stage") == "smoke":
                        rejected.add(version)
                        log.error("model poll: %s (not retried)", exc)
                    else:  # it was given up for good after one try, and the server stayed behind the alias
                        attempts = retry.get(version, (0, 0.0))[0] + 1
                        wait = min(interval * 2 ** attempts, MAX_LOAD_RETRY_SECONDS)
                        retry[version] = (attempts, now + wait)
                        log.error("model poll: %s (tried again in %.0f s)", exc, wait)
                except Exception as exc:  # noqa: BLE001 - the running model stays; try again next time
                    log.warning("model poll: %s", exc)

        self._poller = threading.Thread(target=poll, name="model-poller", daemon=True)
        self._poller.start()

    def close(self) -> None:
        """Stop polling; write what is queued for the audit log and stop the writer (at shutdown)."""
        self._stop_polling.set()
        if self._poller is not None:
            self._poller.join(timeout=60)
            self._poller = None
        if self._audit is not None:
            self._audit.close()
            self._audit = None

    # ---- model ---------------------------------------------------------------------------------
    @property
    def served(self) -> ServedModel:
        served = self._served
        if served is None:
            raise NoModelLoaded("no model is loaded; see /ready, then POST /v1/model/reload",
                                last_error=self.last_error)
        return served

    @property
    def model_ref(self) -> dict[str, Any] | None:
        return self._served.ref if self._served is not None else None

    def load_initial(self) -> bool:
        """Load the configured model at start-up; on failure the service starts without one (not ready)."""
        try:
            self.reload()
        except Exception as exc:  # noqa: BLE001 - logged; /ready reports it
            self.last_error = str(exc)
            log.error("no model loaded at start-up: %s", exc)
            return False
        return True

    def reload(self, skip_versions: Collection[str] = ()) -> dict[str, Any]:
        """Load what the configured alias points at now; keep the running model unless it loads and scores.

        ``skip_versions``: versions already rejected (the poller does not retry them).
        """
        uri = self.settings.model_uri
        with self._reload_lock:
            try:
                name, version, alias = self._resolver(uri)
            except Exception as exc:  # noqa: BLE001 - registry errors are reported, never raised as 500
                raise ModelNotFound(f"{uri}: {_short(exc)}", model_uri=uri) from None
            previous = self.model_ref
            if previous is not None and previous["name"] == name and previous["version"] == version:
                self.alias_behind = None  # the alias is back on what is served
                return {"changed": False, "previous": previous, "model": previous}
            if previous is not None and version in skip_versions:
                return {"changed": False, "previous": previous, "model": previous}
            running = {"loaded_version": previous["version"] if previous else None}
            try:
                loaded = self._loader(f"models:/{name}/{version}")
                loaded = dataclasses.replace(loaded, alias=alias)
            except Exception as exc:  # noqa: BLE001
                self.last_error = f"version {version} failed to load: {_short(exc)}"
                self._behind(alias, version, previous)
                raise ModelRejected(f"{name} version {version} failed to load: {_short(exc)}", stage="load",
                                    rejected_version=version, **running) from None
            try:
                served = ServedModel(loaded, lane_thresholds(self.settings, loaded.model.reference_scores),
                                     dt.datetime.now(dt.UTC))
                self._smoke(served)
            except Exception as exc:  # noqa: BLE001
                self.last_error = f"version {version} failed the smoke test: {_short(exc)}"
                self._behind(alias, version, previous)
                raise ModelRejected(f"{name} version {version} failed to score the smoke sample: {_short(exc)}",
                                    stage="smoke", rejected_version=version, **running) from None
            self._served = served
            self.last_error = None
            self.alias_behind = None
            log.info("serving %s version %s (%s)", name, version, alias)
            # the model's many small objects never die: keep them out of full collections
            gc.collect()
            gc.freeze()
            return {"changed": True, "previous": previous, "model": served.ref}

    def _behind(self, alias: str | None, version: str, previous: dict[str, Any] | None) -> None:
        self.alias_behind = {"alias": alias, "version": version, "problem": self.last_error,
                             "serving": previous["version"] if previous is not None else None}

    def _smoke(self, served: ServedModel) -> None:
        from serving.parsing import validate_records

        records, _ = validate_records(SMOKE_SAMPLE, "declaration", len(SMOKE_SAMPLE))
        table = score_table(served.loaded.model, records, served.thresholds, reasons_for="all",
                            top_k=self.settings.reasons_top_k)
        risk = np.asarray(table.risk_score, dtype=np.float64)
        if len(risk) != len(records) or not np.all(np.isfinite(risk)) or np.any((risk < 0) | (risk > 1)):
            raise ValueError(f"scores out of [0, 1]: {risk.tolist()}")
        if any(not r for r in table.reasons):
            raise ValueError("no reasons produced")

    def check_model(self, requested: str | None) -> ServedModel:
        """The served model, after checking that ``requested`` (NAME, NAME/VERSION or NAME@ALIAS) names it."""
        served = self.served
        if requested is not None and not requested.strip():  # ?model= pinned nothing, and was scored anyway
            raise InputError([FieldProblem("model", "an empty model name pins nothing: give NAME, NAME/VERSION or "
                                                    "NAME@ALIAS, or leave the parameter out", value=requested,
                                           has_value=True)])
        if requested:
            ref = served.ref
            if "@" in requested:
                name, alias = requested.split("@", 1)
                ok = name == ref["name"] and alias == ref["alias"]
            elif "/" in requested:
                name, version = requested.rsplit("/", 1)
                ok = name == ref["name"] and version == ref["version"]
            else:
                ok = requested == ref["name"]
            if not ok:
                raise UnknownModel([FieldProblem(
                    "model", f"model {requested!r} is not served here; serving {ref['name']} version "
                             f"{ref['version']} ({ref['alias']})", value=requested, has_value=True)], "unknown model")
        return served

    def describe(self) -> dict[str, Any]:
        served = self.served
        info = served.loaded.describe()
        info["loaded_at"] = served.loaded_at.isoformat()
        info["lanes"] = served.lanes(self.settings.lanes_by)
        if self.alias_behind is not None:
            info["alias_behind"] = self.alias_behind
        return info

    # ---- risk profiles -------------------------------------------------------------------------
    def rules(self) -> RuleSet:
        """The active profiles and watch lists, compiled once and again only after a change: at once for
        a change made through this service, within ``check_seconds`` for one made by another process
        (the store's change counter is read at most that often: one indexed read)."""
        now = time.monotonic()
        cached = self._rules
        local = self.profiles.local_changes
        if cached is not None and cached.local == local and now - cached.checked < self.profiles.check_seconds:
            return cached.rules
        with self._rules_lock:
            revision = self.profiles.revision()
            cached = self._rules
            if cached is None or cached.revision != revision:
                cached = _CachedRules(revision, local, now, self.profiles.ruleset()[0])
            self._rules = dataclasses.replace(cached, local=local, checked=now)
            return cached.rules

    def _decide(self, records: Sequence[dict[str, Any]], table: ScoreTable,
                capacity: str | float | None = None, random_share: float = 0.0, seed: int = 0) -> Decision:
        rules = self.rules()
        cols: dict[str, Any] = {}
        if rules.rules:
            cols = dict(table.columns)
            for name in rules.kinds:  # mapped extra columns a profile names but the model does not use
                if name not in cols and any(name in r for r in records):
                    cols[name] = np.array([r.get(name) for r in records], dtype=object)
        return decide(cols, table.risk_score, table.lane, rules, capacity, random_share, seed,
                      ids=np.asarray(table.declaration_id, dtype=object))

    @staticmethod
    def _alerts(decision: Decision, items: Sequence[dict[str, Any]], source: str) -> list[dict[str, Any]]:
        if not decision.alert.any():
            return []
        ids = np.array([r["declaration_id"] for r in items], dtype=object)
        return alert_records(decision, ids, source)

    # ---- scoring -------------------------------------------------------------------------------
    def score(self, records: Sequence[dict[str, Any]], principal: Principal, model: str | None = None) -> dict[str, Any]:
        served = self.check_model(model)
        table = score_table(served.loaded.model, records, served.thresholds, reasons_for="all",
                            top_k=self.settings.reasons_top_k)
        decision = self._decide(records, table)
        results = table.records()
        for i, r in enumerate(results):
            r["percentile"] = _round(r["percentile"], 3)
            r["lane"] = str(decision.lane[i])
            r["rule_hits"] = decision.hits_json(i)
        self._record(AuditEvent.of(principal, "score", served.loaded.name, served.loaded.version, results),
                     self._alerts(decision, results, "score"))
        return {"model": served.ref, "count": len(results), "results": results}

    def rank(self, records: Sequence[dict[str, Any]], capacity: str | float, random_share: float, seed: int,
             reasons: str, principal: Principal, model: str | None = None) -> dict[str, Any]:
        served = self.check_model(model)
        try:
            capacity_count(len(records), capacity)
        except ValueError as exc:
            raise InputError([FieldProblem("capacity", f"{exc} (give a count, a fraction below 1 or a percentage "
                                                       f"such as '5%')", value=capacity, has_value=True)]) from None
        table = score_table(served.loaded.model, records, served.thresholds, reasons_for=reasons,  # type: ignore[arg-type]
                            top_k=self.settings.reasons_top_k)
        decision = self._decide(records, table, capacity, random_share, seed)
        assert decision.rank is not None and decision.probability is not None
        names = decision.selection_names
        base = table.records()
        order = np.argsort(decision.rank, kind="stable")
        items = []
        for i in order:
            r = base[i]
            r["percentile"] = _round(r["percentile"], 3)
            r["lane"] = str(decision.lane[i])
            r["rank"] = int(decision.rank[i])
            r["selection"] = names[i]
            r["selection_probability"] = float(decision.probability[i])
            r["rule_hits"] = decision.hits_json(int(i))
            items.append(r)
        self._record(AuditEvent.of(principal, "rank", served.loaded.name, served.loaded.version, items,
                                   {"capacity": capacity, "random_share": random_share, "seed": seed}),
                     self._alerts(decision, base, "rank"))
        n_model, n_random, n_rule = (int(np.sum(names == s)) for s in ("model", "random", "rule"))
        return {"model": served.ref, "count": len(items), "capacity": n_model + n_random + n_rule,
                "selected_model": n_model, "selected_random": n_random, "selected_rule": n_rule,
                "random_share": random_share, "lanes": served.lanes(self.settings.lanes_by), "items": items}

    # ---- outcomes ------------------------------------------------------------------------------
    def record_outcomes(self, records: Sequence[dict[str, Any]], principal: Principal) -> dict[str, Any]:
        status = self.store.record_outcomes(records, recorded_by=principal.name)
        items = [{"declaration_id": r["declaration_id"], "status": s} for r, s in zip(records, status, strict=True)]
        # accepted (it may have been scored in batch), but a mistyped id would never join its declaration
        ids = [r["declaration_id"] for r in records]
        scored = self.store.scored_declaration_ids(ids)
        unknown = [i for i in dict.fromkeys(ids) if i not in scored]
        return {"created": status.count("created"), "unchanged": status.count("unchanged"), "items": items,
                "unknown_declaration_ids": unknown}

    # ---- health --------------------------------------------------------------------------------
    def readiness(self) -> dict[str, Any]:
        loaded = self._served is not None
        reachable = self.store.ping()
        return {"ready": loaded and reachable, "model_loaded": loaded, "store_reachable": reachable,
                "model": self.model_ref, "audit_backlog": self._audit.backlog if self._audit is not None else 0,
                "alias_behind": self.alias_behind}


@dataclass(frozen=True)
class _CachedRules:
    revision: int  # the store's change counter the rules were compiled at
    local: int  # changes made through this process's profile store by then
    checked: float  # when the counter was last read (time.monotonic)
    rules: RuleSet


def _short(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:limit]

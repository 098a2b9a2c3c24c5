"""Risk profiles, watch lists, alerts and their change log in the serving store (same database as the
keys and the audit log).

Every version of every profile and watch list is kept (a change adds a version, nothing is updated),
so the alerts and audit rows that name a version keep pointing at what fired. Every create, change
and retirement adds a row to the append-only change log with who and when. Validation happens before
anything is written: a batch with one bad profile stores nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import getpass
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from profiles import (
    STATS_COLUMNS,
    Profile,
    ProfileError,
    ProfileProblem,
    RuleSet,
    WatchList,
    add_versions,
    compile_rules,
    describe_pins,
    field_kinds,
    pinned_profiles,
    profile_stats,
    validate_profiles,
)
from serving.store import (
    _CHUNK,
    _DriverInsert,
    _reachable,
    audit_events,
    audit_items,
    audit_rule_hits,
    metadata,
    outcomes,
)

profile_versions = sa.Table(
    "profile_versions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("profile_id", sa.String(64), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.UniqueConstraint("profile_id", "version", name="uq_profile_versions_profile_id_version"),
)

watch_list_versions = sa.Table(
    "watch_list_versions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("field", sa.String(100), nullable=False),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.UniqueConstraint("name", "version", name="uq_watch_list_versions_name_version"),
)

# append-only: who created, changed or retired which version, and when
profile_changes = sa.Table(
    "profile_changes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("rule_id", sa.String(64), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
)

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("declaration_id", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("criterion", sa.Text, nullable=False),
    sa.Column("risk_score", sa.Float, nullable=True),
    sa.Column("lane", sa.String(10), nullable=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("acked_by", sa.String(200), nullable=True),
    # one alert per declaration and rule version, however often it is scored again
    sa.UniqueConstraint("declaration_id", "kind", "rule_id", "version", name="uq_alerts_declaration_rule"),
)

log = logging.getLogger("riskprof.serving")

_REVISION = sa.select(sa.func.coalesce(sa.func.max(profile_changes.c.id), 0))

PROFILE_TABLES = ("profile_versions", "watch_list_versions", "profile_changes", "alerts")
ALERT_FIELDS = ("id", "created_at", "declaration_id", "kind", "rule_id", "version", "criterion", "risk_score",
                "lane", "source", "status", "acked_at", "acked_by")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Actor:
    """Who changes profiles: an API key (name, role) or a CLI user (role ``cli``)."""

    name: str
    role: str

    @classmethod
    def cli(cls) -> Actor:
        try:
            name = os.getlogin()
        except OSError:  # no controlling terminal (cron, containers)
            name = os.environ.get("USER") or getpass.getuser()
        return cls(name, "cli")


MAX_ALERT_ID = 2**63 - 1  # alert ids are 64-bit database integers from 1


class NotFound(LookupError):
    """No profile, watch list or alert by that id."""


class VersionConflict(RuntimeError):
    """Another writer stored the same version first; nothing of this change was stored."""


class StaleVersion(VersionConflict):
    """A change made on a version that is no longer the latest (another change came first): nothing of it
    was stored. ``current`` is the latest version."""

    def __init__(self, what: str, base: int, current: int):
        super().__init__(f"{what} is at version {current}, not {base}: another change came first; nothing was "
                         "stored, read it again and make the change on the latest version")
        self.base, self.current = base, current


def _check_base(what: str, base: int | None, current: int) -> None:
    if base is not None and base != current:
        raise StaleVersion(what, base, current)


@dataclass(frozen=True)
class Saved:
    profiles: list[Profile]
    watchlists: list[WatchList]

    def as_dict(self) -> dict[str, Any]:
        return {"profiles": [{"id": p.id, "version": p.version, "status": p.status} for p in self.profiles],
                "watch_lists": [{"name": w.name, "version": w.version} for w in self.watchlists]}


def extra_columns_from_env() -> dict[str, str]:
    """Mapped extra columns profiles may name: ``RISKPROF_PROFILE_EXTRA_COLUMNS=seller_id,weight2:number``."""
    raw = os.environ.get("RISKPROF_PROFILE_EXTRA_COLUMNS", "")
    out: dict[str, str] = {}
    for item in filter(None, (x.strip() for x in raw.split(","))):
        name, _, kind = item.partition(":")
        out[name.strip()] = kind.strip() or "string"
    return out


class ProfileStore:
    """Profiles, watch lists, alerts and the change log over the serving store's engine."""

    def __init__(self, engine: Engine, extra_columns: Mapping[str, str] | None = None,
                 check_seconds: float | None = None):
        self.engine = engine
        self.extra_columns = dict(extra_columns) if extra_columns is not None else extra_columns_from_env()
        # how long a process may serve a compiled rule set before asking the store whether another
        # process changed profiles (changes through this object are seen at once)
        self.check_seconds = (check_seconds if check_seconds is not None
                              else float(os.environ.get("RISKPROF_PROFILES_CHECK_SECONDS", "1.0")))
        self.local_changes = 0

    # ---- reading -------------------------------------------------------------------------------
    @_reachable
    def profile_history(self, profile_id: str | None = None) -> list[Profile]:
        q = sa.select(_text(profile_versions)).order_by(profile_versions.c.id)
        if profile_id is not None:
            q = q.where(profile_versions.c.profile_id == profile_id)
        return _read(self.engine, q, Profile)

    @_reachable
    def watchlist_history(self, name: str | None = None) -> list[WatchList]:
        q = sa.select(_text(watch_list_versions)).order_by(watch_list_versions.c.id)
        if name is not None:
            q = q.where(watch_list_versions.c.name == name)
        return _read(self.engine, q, WatchList)

    def profiles(self) -> list[Profile]:
        """The latest version of every profile (in the order they were first stored)."""
        return self._latest(profile_versions, "profile_id", Profile)

    def watchlists(self) -> list[WatchList]:
        """The latest version of every watch list: read alone, not the whole history (each change of a
        list stores all its entries again)."""
        return self._latest(watch_list_versions, "name", WatchList)

    @_reachable
    def _latest(self, table: sa.Table, key: str, model: type[M], only: str | None = None) -> list[M]:
        """The definitions of each ``key``'s highest version, in the order of each key's first version
        (as ``latest_versions`` of the history gives them); ``only``: that key's alone."""
        top_q = sa.select(table.c[key], sa.func.max(table.c.version).label("top"), sa.func.min(table.c.id).label("first"))
        if only is not None:
            top_q = top_q.where(table.c[key] == only)
        top = top_q.group_by(table.c[key]).subquery()
        q = (sa.select(_text(table)).join(top, sa.and_(table.c[key] == top.c[key], table.c.version == top.c.top))
             .order_by(top.c.first))
        return _read(self.engine, q, model)

    @_reachable
    def versions(self, pins: Mapping[str, Sequence[Mapping[str, Any]]]) -> tuple[list[Profile], list[WatchList]]:
        """The profile and watch-list versions of recorded pins, in the pins' order; ``NotFound`` if one is
        not in the store. Only those versions are read."""
        wanted = [(p["id"], int(p["version"])) for p in pins.get("profiles", ())]
        lists_wanted = [(w["name"], int(w["version"])) for w in pins.get("watch_lists", ())]
        found_p = {(p.id, p.version): p for p in self._versions(profile_versions, "profile_id", wanted, Profile)}
        found_w = {(w.name, w.version): w for w in self._versions(watch_list_versions, "name", lists_wanted,
                                                                   WatchList)}
        missing = sorted(set(wanted) - found_p.keys()) + sorted(set(lists_wanted) - found_w.keys())
        if missing:
            raise NotFound(f"pinned versions not in the store: {missing}")
        return [found_p[k] for k in wanted], [found_w[k] for k in lists_wanted]

    def _versions(self, table: sa.Table, key: str, pairs: Sequence[tuple[str, int]], model: type[M]) -> list[M]:
        out: list[M] = []
        for start in range(0, len(pairs), _CHUNK):
            out += _read(self.engine, sa.select(_text(table)).where(
                sa.tuple_(table.c[key], table.c.version).in_(pairs[start:start + _CHUNK])), model)
        return out

    def profile(self, profile_id: str, version: int | None = None) -> Profile:
        history = self.profile_history(profile_id)
        found = [p for p in history if version is None or p.version == version]
        if not found:
            raise NotFound(f"no profile {profile_id!r}" + (f" version {version}" if version else ""))
        return max(found, key=lambda p: p.version)

    def watchlist(self, name: str) -> WatchList:
        found = self._latest(watch_list_versions, "name", WatchList, only=name)
        if not found:
            raise NotFound(f"no watch list {name!r}")
        return found[0]

    @_reachable
    def revision(self) -> int:
        """Grows with every stored change (any process): one indexed read, cheap enough per request."""
        # outside a transaction on PostgreSQL (no BEGIN/ROLLBACK round trips); SQLite starts none for a read
        options = {} if self.engine.dialect.name == "sqlite" else {"isolation_level": "AUTOCOMMIT"}
        with self.engine.connect().execution_options(**options) as conn:
            return int(conn.execute(_REVISION).scalar_one())

    def ruleset(self, on: dt.date | None = None) -> tuple[RuleSet, list[Profile], list[WatchList]]:
        """The pinned set: the latest version of each active profile and of each watch list, compiled."""
        pinned, lists = self._usable(pinned_profiles(self.profiles(), on), self.watchlists())
        return compile_rules(pinned, lists, self.extra_columns), pinned, lists

    def _usable(self, pinned: list[Profile], lists: list[WatchList]) -> tuple[list[Profile], list[WatchList]]:
        """Leave out (with a warning) what names a column the mapping no longer has: it cannot match,
        and it must not stop every declaration from being scored."""
        kinds = field_kinds(self.extra_columns).kinds
        lists_ok = [w for w in lists if w.field in kinds]
        names = {w.name for w in lists_ok}
        ok = [p for p in pinned if all(c.field in kinds and (c.watch_list is None or c.watch_list in names)
                                       for c in p.conditions)]
        dropped = [f"profile {p.id} v{p.version}" for p in pinned if p not in ok] + [
            f"watch list {w.name} v{w.version}" for w in lists if w not in lists_ok]
        if dropped:
            log.warning("not applied, they name columns the mapping lacks (RISKPROF_PROFILE_EXTRA_COLUMNS): %s",
                        ", ".join(dropped))
        return ok, lists_ok

    def pins(self, on: dt.date | None = None) -> dict[str, list[dict[str, Any]]]:
        """The versions a batch run pins at its start, as its ``.meta.json`` records them."""
        _, pinned, lists = self.ruleset(on)
        return {"profiles": describe_pins(pinned), "watch_lists": [{"name": w.name, "version": w.version}
                                                                   for w in lists]}

    def ruleset_of(self, pins: Mapping[str, Sequence[Mapping[str, Any]]]) -> RuleSet:
        """The rule set of recorded pins (a resumed run uses the set its first start pinned, whatever
        changed since); ``NotFound`` if a pinned version is not in the store."""
        return compile_rules(*self.versions(pins), self.extra_columns)

    @_reachable
    def changes(self, rule_id: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(profile_changes).order_by(profile_changes.c.id)
        if rule_id is not None:
            q = q.where(profile_changes.c.rule_id == rule_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    # ---- writing -------------------------------------------------------------------------------
    def validate(self, profiles: Sequence[Profile | Mapping[str, Any]],
                 watchlists: Sequence[WatchList | Mapping[str, Any]] = ()) -> tuple[list[Profile], list[WatchList]]:
        """Checked against the contract (and the stored watch lists they may name); ``ProfileError``."""
        return validate_profiles(profiles, watchlists, self.extra_columns, self.watchlists())

    def save(self, profiles: Sequence[Profile | Mapping[str, Any]],
             watchlists: Sequence[WatchList | Mapping[str, Any]], actor: Actor,
             base_version: int | None = None) -> Saved:
        """Validate, then store the versions that changed (unchanged definitions add nothing).

        ``base_version`` (a change of one existing profile or list): the version the change was made on;
        :class:`StaleVersion` if a later one is stored, checked where the new version is numbered (and a
        writer storing the same number meanwhile fails on the table's key), so no change made since is
        silently undone."""
        with gc_paused():  # a 100,000-entry list is validated, compared and dumped: no cycles among them
            stored = self.watchlists()  # each one's latest version (every version holds all its entries)
            checked, lists = validate_profiles(profiles, watchlists, self.extra_columns, stored)
            _, new_lists = add_versions(stored, lists)
            _, new_profiles = add_versions(self.profiles() if checked else [], checked)
            if base_version is not None:
                for p in new_profiles:
                    _check_base(f"profile {p.id!r}", base_version, p.version - 1)
                for w in new_lists:
                    _check_base(f"watch list {w.name!r}", base_version, w.version - 1)
            self._insert(new_profiles, new_lists, actor)
        return Saved(new_profiles, new_lists)

    def update_profile(self, profile_id: str, body: Mapping[str, Any], actor: Actor,
                       base_version: int | None = None) -> Saved:
        """A new version of an existing profile (``NotFound`` if there is none); ``base_version``: the
        version it was made on (:class:`StaleVersion` if another is the latest)."""
        _check_base(f"profile {profile_id!r}", base_version, self.profile(profile_id).version)
        doc = {**body, "id": profile_id}
        doc.pop("version", None)
        return self.save([doc], [], actor, base_version)

    def update_watchlist(self, name: str, body: Mapping[str, Any], actor: Actor,
                         base_version: int | None = None) -> Saved:
        _check_base(f"watch list {name!r}", base_version, self.watchlist(name).version)
        doc = {**body, "name": name}
        doc.pop("version", None)
        return self.save([], [doc], actor, base_version)

    def retire(self, profile_id: str, actor: Actor) -> Saved:
        current = self.profile(profile_id)
        if current.status == "retired":
            return Saved([], [])
        return self.save([current.model_copy(update={"status": "retired"})], [], actor, current.version)

    @_reachable
    def _insert(self, new_profiles: Sequence[Profile], new_lists: Sequence[WatchList], actor: Actor) -> None:
        if not new_profiles and not new_lists:
            return
        now = _now()
        log: list[dict[str, Any]] = []
        try:
            with self.engine.begin() as conn:
                if new_lists:
                    conn.execute(watch_list_versions.insert(), [
                        {"name": w.name, "version": w.version, "field": w.field,
                         "definition": w.model_dump(mode="json"), "created_at": now, "created_by": actor.name}
                        for w in new_lists])
                    log += [_change(now, actor, "watch_list", w.name, w.version,
                                    "create" if w.version == 1 else "change") for w in new_lists]
                if new_profiles:
                    conn.execute(profile_versions.insert(), [
                        {"profile_id": p.id, "version": p.version, "status": p.status,
                         "definition": p.model_dump(mode="json"), "created_at": now, "created_by": actor.name}
                        for p in new_profiles])
                    log += [_change(now, actor, "profile", p.id, p.version, _action_of(p)) for p in new_profiles]
                conn.execute(profile_changes.insert(), log)
            self.local_changes += 1
        except IntegrityError as exc:
            raise VersionConflict("another change stored the same version first; nothing was stored, "
                                  "read the profiles again and retry") from exc

    # ---- alerts --------------------------------------------------------------------------------
    @_reachable
    def create_alerts(self, rows: Sequence[Mapping[str, Any]] | pa.Table) -> int:
        """Insert alerts not already raised for the same declaration and rule version; returns how many.
        ``rows``: records, or a batch's alerts as an Arrow table of the same columns."""
        if not len(rows):
            return 0
        with self.engine.begin() as conn:
            return insert_alerts(conn, rows)

    @_reachable
    def list_alerts(self, status: str | None = None, limit: int = 100, rule_id: str | None = None
                    ) -> list[dict[str, Any]]:
        q = sa.select(*[alerts.c[f] for f in ALERT_FIELDS]).order_by(alerts.c.id.desc()).limit(limit)
        if status is not None:
            q = q.where(alerts.c.status == status)
        if rule_id is not None:
            q = q.where(alerts.c.rule_id == rule_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    @_reachable
    def ack_alert(self, alert_id: int, actor: Actor) -> dict[str, Any]:
        if not 1 <= alert_id <= MAX_ALERT_ID:  # no such alert; a database integer cannot even hold some
            raise NotFound(f"no alert {alert_id}")
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(alerts.c.status).where(alerts.c.id == alert_id)).first()
            if row is None:
                raise NotFound(f"no alert {alert_id}")
            if row.status != "acked":
                conn.execute(alerts.update().where(alerts.c.id == alert_id)
                             .values(status="acked", acked_at=_now(), acked_by=actor.name))
            got = conn.execute(sa.select(*[alerts.c[f] for f in ALERT_FIELDS]).where(alerts.c.id == alert_id))
            return dict(got.mappings().one())

    # ---- effectiveness -------------------------------------------------------------------------
    @_reachable
    def recorded(self, rule_id: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(rule hits, selections, outcomes) as :func:`profiles.profile_stats` reads them.

        A declaration's selection is the latest recorded for it (a rank's ``selection``; a plain score
        counts as ``none``); its date is the day it was scored, so the period is of scoring days.
        """
        hits_q = sa.select(audit_rule_hits.c.declaration_id, audit_rule_hits.c.kind, audit_rule_hits.c.rule_id,
                           audit_rule_hits.c.version)
        if rule_id is not None:
            hits_q = hits_q.where(audit_rule_hits.c.rule_id == rule_id)
        sel_q = (sa.select(audit_items.c.declaration_id, audit_events.c.created_at, audit_items.c.selection)
                 .select_from(audit_items.join(audit_events, audit_items.c.event_uid == audit_events.c.uid))
                 .order_by(audit_events.c.id, audit_items.c.item))
        out_q = sa.select(outcomes.c.declaration_id, outcomes.c.inspected, outcomes.c.hit)
        with self.engine.connect() as conn:
            hits = pd.DataFrame(conn.execute(hits_q).all(), columns=["declaration_id", "kind", "rule_id", "version"])
            sel = pd.DataFrame(conn.execute(sel_q).all(), columns=["declaration_id", "created_at", "selection"])
            found = pd.DataFrame(conn.execute(out_q).all(), columns=["declaration_id", "inspected", "hit"])
        sel = sel.drop_duplicates("declaration_id", keep="last")
        selections = pd.DataFrame({
            "declaration_id": sel["declaration_id"],
            "declaration_date": pd.to_datetime(sel["created_at"], utc=True).dt.tz_localize(None).dt.normalize(),
            "selection_source": sel["selection"].fillna("none")})
        return hits, selections, found

    def stats(self, since: dt.date | None = None, until: dt.date | None = None,
              rule_id: str | None = None) -> pd.DataFrame:
        """:data:`profiles.STATS_COLUMNS` per profile and watch list (only ``rule_id``'s when given)."""
        hits, selections, found = self.recorded(rule_id)
        if not len(hits):
            return pd.DataFrame(columns=list(STATS_COLUMNS))
        return profile_stats(hits, selections, found, since, until)


_ALERT_COLUMNS = ("declaration_id", "kind", "rule_id", "version", "criterion", "risk_score", "lane", "source")


M = TypeVar("M", Profile, WatchList)


def _text(table: sa.Table) -> Any:
    """A definition as the JSON text stored (``_read`` validates it in one step)."""
    return sa.cast(table.c.definition, sa.Text).label("definition")


def _read(engine: Engine, q: sa.Select[Any], model: type[M]) -> list[M]:
    """The definitions ``q`` selects (:func:`_text`), as models: validated from their JSON text by
    pydantic in one step (a 100,000-entry list: 0.10 s against 0.18 s through ``json.loads`` and
    Python dicts). The cyclic garbage collector is paused meanwhile: such a list makes some 300,000
    tracked objects, whose allocation set off full collections that took 0.45 of the 0.7 s its read
    took (none of them can be garbage)."""
    with gc_paused(), engine.connect() as conn:
        # context "stored": the bounds on incoming text (profiles.model) do not apply to what is stored
        return [model.model_validate_json(d, context={"stored": True}) for d in conn.execute(q).scalars()]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (as it was before, after it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def insert_alerts(conn: sa.Connection, rows: Sequence[Mapping[str, Any]] | pa.Table) -> int:
    """The alerts of ``rows`` (records, or an Arrow table of their columns) not raised before (same
    declaration and rule version), inserted within the caller's transaction (the API writes them with
    the call's audit event: one commit); returns how many."""
    if not len(rows):
        return 0
    now = _now()
    if conn.dialect.name == "sqlite":  # one driver insert, duplicates skipped by the unique constraint
        return _insert_alerts_sqlite(conn, rows, now)
    if isinstance(rows, pa.Table):
        rows = rows.to_pylist()
    ids = sorted({r["declaration_id"] for r in rows})
    have: set[tuple[str, str, str, int]] = set()
    for start in range(0, len(ids), _CHUNK):  # bounded look-ups however many a batch alerts on
        have |= {(r.declaration_id, r.kind, r.rule_id, r.version) for r in conn.execute(
            sa.select(alerts.c.declaration_id, alerts.c.kind, alerts.c.rule_id, alerts.c.version)
            .where(alerts.c.declaration_id.in_(ids[start:start + _CHUNK])))}
    new, seen = [], set()
    for r in rows:
        k = (r["declaration_id"], r["kind"], r["rule_id"], int(r["version"]))
        if k in have or k in seen:
            continue
        seen.add(k)
        new.append({**{f: r.get(f) for f in _ALERT_COLUMNS}, "created_at": now, "status": "open"})
    if new:
        conn.execute(_insert_ignoring_duplicates(conn), new)
    return len(new)


def _insert_alerts_sqlite(conn: sa.Connection, rows: Sequence[Mapping[str, Any]] | pa.Table,
                          now: dt.datetime) -> int:
    """SQLite: ``INSERT ... ON CONFLICT DO NOTHING`` on the driver's cursor, within the caller's
    transaction; the unique constraint skips an alert raised before (or twice in ``rows``), so no
    look-up goes first (an alerting API call paid ~0.9 ms for the look-up and SQLAlchemy's insert). A
    table's columns go to the driver as they are, without a record per alert."""
    insert = _sqlite_alerts_insert(conn.dialect)
    n = len(rows)
    if isinstance(rows, pa.Table):
        columns: dict[str, Any] = {f: rows.column(f).to_pylist() for f in _ALERT_COLUMNS}
    else:
        columns = {f: [r.get(f) for r in rows] for f in _ALERT_COLUMNS}
        columns["version"] = [int(v) for v in columns["version"]]
    columns.update({"created_at": [now] * n, "status": ["open"] * n, "acked_at": [None] * n, "acked_by": [None] * n})
    return insert.run_columns(conn, columns)


@functools.cache  # per engine dialect: compiled once
def _sqlite_alerts_insert(dialect: sa.Dialect) -> _DriverInsert:
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return _DriverInsert(alerts, dialect, sqlite_insert(alerts).on_conflict_do_nothing())


def _change(now: dt.datetime, actor: Actor, kind: str, rule_id: str, version: int, action: str) -> dict[str, Any]:
    return {"created_at": now, "actor": actor.name, "role": actor.role, "kind": kind, "rule_id": rule_id,
            "version": version, "action": action}


def _action_of(p: Profile) -> str:
    if p.status == "retired":
        return "retire"
    return "create" if p.version == 1 else "change"


def _insert_ignoring_duplicates(conn: sa.Connection) -> Any:
    """Two processes alerting on the same declaration at once: the second insert is skipped, not an error."""
    return _alerts_insert(conn.dialect.name)


@functools.cache  # built once per dialect: an alerting API call inserts with it
def _alerts_insert(dialect: str) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(alerts).on_conflict_do_nothing()
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(alerts).on_conflict_do_nothing()
    return alerts.insert()


def problems_body(exc: ProfileError) -> list[dict[str, Any]]:
    """The 422 body's ``detail``: one entry per problem naming the profile, condition, field and problem."""
    return [p.as_dict() for p in exc.problems]


def file_problem(message: str) -> ProfileError:
    return ProfileError([ProfileProblem("<file>", message, kind="file")])

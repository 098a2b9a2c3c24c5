"""Risk profile and watch-list commands over the serving store: ``profiles list|show|import|export|retire|
report|suggest`` and ``watchlists list|show|import|export``.

Changes are recorded in the store's change log under the user running the command (role ``cli``).
Invalid files are refused whole (exit 2, each problem named); nothing is stored then.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from riskprof.cli_data import console, fail, parse_day
from riskprof.cli_db import URL_OPTION

profiles_app = typer.Typer(help="Risk profiles in the serving store (RISKPROF_DATABASE_URL, default SQLite "
                                "models/serving.db).", no_args_is_help=True)
watchlists_app = typer.Typer(help="Watch lists in the serving store.", no_args_is_help=True)

OUT_OPTION = typer.Option(None, "--out", "-o", help="Write the YAML here (default: standard output).")


def _store(url: str | None) -> Any:
    from riskprof.cli_db import open_store
    from serving.profile_store import ProfileStore

    if url is None:
        from serving.settings import get_serving_settings

        url = get_serving_settings().resolved_database_url
    return ProfileStore(open_store(url).engine)


def _refuse(exc: Exception) -> None:
    """Every problem of an invalid file or change, then exit 2 (nothing was stored)."""
    problems = getattr(exc, "problems", None) or [exc]
    for p in problems:
        console.print(f"  {p}", highlight=False, markup=False, soft_wrap=True)
    fail(f"{len(problems)} problem(s); nothing was stored")


def _load(path: Path, store: Any) -> tuple[list[Any], list[Any]]:
    from profiles import ProfileError, load_profiles

    if not path.is_file():
        fail(f"{path}: a folder, not a YAML file" if path.is_dir() else f"{path}: no such file")
    try:
        profiles, lists = load_profiles(path, store.extra_columns, store.watchlists())
        if not profiles and not lists and not _empty_export(path):  # an empty file, comments only, `profiles: null`
            fail(f"{path}: holds no profiles and no watch lists (expected the keys profiles: and watch_lists:)")
        return profiles, lists
    except ProfileError as exc:
        _refuse(exc)
    except UnicodeDecodeError as exc:
        fail(f"{path}: not a UTF-8 text file ({exc.reason})")
    raise AssertionError("unreachable")


def _empty_export(path: Path) -> bool:
    """Whether ``path`` is an export of a store with nothing in it (``profiles: []``, ``watch_lists: []``):
    importing it changes nothing, and is no error."""
    from features.yamlfile import load_yaml

    doc = load_yaml(path.read_text(encoding="utf-8"))
    return (isinstance(doc, dict) and bool(doc) and set(doc) <= {"profiles", "watch_lists"}
            and all(v == [] for v in doc.values()))


def _save(store: Any, profiles: list[Any], lists: list[Any]) -> None:
    from profiles import ProfileError
    from serving.profile_store import Actor, VersionConflict

    try:
        saved = store.save(profiles, lists, Actor.cli())
    except (ProfileError, VersionConflict) as exc:
        _refuse(exc)
        return
    for p in saved.profiles:
        typer.echo(f"profile {p.id}: version {p.version} ({p.status})")
    for w in saved.watchlists:
        typer.echo(f"watch list {w.name}: version {w.version} ({len(w.entries)} entries)")
    if not saved.profiles and not saved.watchlists:
        typer.echo("nothing changed: every definition equals its stored latest version")


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out}", highlight=False)


# ---- profiles --------------------------------------------------------------------------------------
@profiles_app.command("list")
def profiles_list(url: str | None = URL_OPTION,
                  status: str | None = typer.Option(None, "--status", help="draft, active or retired")) -> None:
    """The latest version of every profile: id, version, status, validity and criterion."""
    from typing import get_args

    from profiles.model import Status

    if status is not None and status not in get_args(Status):
        fail(f"--status {status!r}: one of {', '.join(get_args(Status))}")
    for p in _store(url).profiles():
        if status is None or p.status == status:
            until = p.valid_to or "open"
            typer.echo(f"{p.id}\tv{p.version}\t{p.status}\t{p.valid_from}..{until}\t{p.criterion}")


@profiles_app.command("show")
def profiles_show(profile_id: str = typer.Argument(..., help="The profile id."), url: str | None = URL_OPTION,
                  version: int | None = typer.Option(None, "--version", help="An earlier version.")) -> None:
    """One profile as YAML, then its versions and change log (who, when)."""
    from profiles import dump_profiles
    from serving.profile_store import NotFound

    store = _store(url)
    try:
        p = store.profile(profile_id, version)
    except NotFound as exc:
        fail(str(exc))
        return
    typer.echo(dump_profiles([p]), nl=False)
    typer.echo(f"# versions: {[h.version for h in store.profile_history(profile_id)]}")
    for c in store.changes(profile_id):
        if c["kind"] == "profile":
            typer.echo(f"# {c['created_at']:%Y-%m-%d %H:%M:%S} {c['action']} v{c['version']} by {c['actor']} "
                       f"({c['role']})")


@profiles_app.command("import")
def profiles_import(file: Path = typer.Argument(..., help="YAML with profiles: (and watch_lists:)."),
                    url: str | None = URL_OPTION) -> None:
    """Store the file's profiles (and watch lists): new ones as given, changed ones as a new version."""
    store = _store(url)
    _save(store, *_load(file, store))


@profiles_app.command("export")
def profiles_export(out: Path | None = OUT_OPTION, url: str | None = URL_OPTION) -> None:
    """The latest version of every profile as YAML, with the watch lists they name (``import`` of it, into
    this store or another, gives the same profiles)."""
    from profiles import dump_profiles

    store = _store(url)
    profiles = store.profiles()
    named = {c.watch_list for p in profiles for c in p.conditions if c.watch_list}
    _write(dump_profiles(profiles, [w for w in store.watchlists() if w.name in named]), out)


@profiles_app.command("retire")
def profiles_retire(profile_id: str = typer.Argument(..., help="The profile id."), url: str | None = URL_OPTION) -> None:
    """A new version with status ``retired``: it stops firing, its earlier versions stay."""
    from profiles import ProfileError
    from serving.profile_store import Actor, NotFound, VersionConflict

    try:
        saved = _store(url).retire(profile_id, Actor.cli())
    except NotFound as exc:
        fail(str(exc))
        return
    except (ProfileError, VersionConflict) as exc:
        _refuse(exc)
        return
    if saved.profiles:
        typer.echo(f"profile {profile_id}: retired as version {saved.profiles[0].version}")
    else:
        typer.echo(f"profile {profile_id} is retired already")


@profiles_app.command("report")
def profiles_report(since: str | None = typer.Option(None, "--since", help="From this day (YYYY-MM-DD)."),
                    until: str | None = typer.Option(None, "--until", help="Up to this day (YYYY-MM-DD)."),
                    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for profile_stats.csv/.json."),
                    url: str | None = URL_OPTION) -> None:
    """Per profile and watch list: matches, inspections, hits, hit rate (95 % interval) beside the
    model-selected hit rate, from recorded selections and outcomes; flags retirement candidates."""
    table = _store(url).stats(parse_day(since, "--since"), parse_day(until, "--until"))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        from features.io import spreadsheet_frame

        spreadsheet_frame(table).to_csv(out / "profile_stats.csv", index=False)  # names: no live formula
        records = json.loads(table.to_json(orient="records"))
        (out / "profile_stats.json").write_text(json.dumps(records, indent=2), encoding="utf-8")
        console.print(f"wrote {out / 'profile_stats.csv'} and {out / 'profile_stats.json'}", highlight=False)
    if table.empty:
        typer.echo("no profile or watch list matched a recorded declaration in this period")
        return
    for r in table.itertuples(index=False):
        rate = "n/a" if r.inspections == 0 else f"{r.hit_rate:.1%} [{r.hit_rate_low:.1%}-{r.hit_rate_high:.1%}]"
        model = "n/a" if r.model_inspections == 0 else f"{r.model_hit_rate:.1%}"
        flag = "  RETIREMENT CANDIDATE" if r.candidate_for_retirement else ""
        typer.echo(f"{r.kind} {r.rule_id}: {r.matches} matches, {r.inspections} inspected, {r.hits} hits, "
                   f"hit rate {rate}; model {model}{flag}")


@profiles_app.command("suggest")
def profiles_suggest(seizures: list[Path] = typer.Option(..., "--seizures", "-s", help="Seizure CSV/Parquet file."),
                     since: str | None = typer.Option(None, "--since", help="Start of the recent window."),
                     url: str | None = URL_OPTION) -> None:
    """Draft profiles for route/conveyance/cover-heading combinations whose seizure cases rose, with
    their evidence; stored as ``draft`` (they fire only once an analyst activates them)."""
    from features.contracts import SEIZURE, ContractError
    from features.io import LoadError, load_table
    from profiles import suggest_profiles

    start = parse_day(since, "--since")
    try:
        frame = load_table(seizures, SEIZURE).frame
    except ContractError as exc:
        console.print(exc.report.summary(limit=30), highlight=False, markup=False)
        fail(f"{len(exc.report.problems)} problem(s) in the seizure input; nothing stored")
        return
    except (LoadError, OSError) as exc:
        fail(str(exc))
        return
    found = suggest_profiles(frame, start)
    for s in found:
        typer.echo(f"{s.profile.id}: {s.profile.criterion}; examples {', '.join(s.example_cases)}")
    if not found:
        typer.echo("no combination rose enough to suggest a profile")
        return
    _save(_store(url), [s.profile for s in found], [])


# ---- watch lists -----------------------------------------------------------------------------------
@watchlists_app.command("list")
def watchlists_list(url: str | None = URL_OPTION) -> None:
    """The latest version of every watch list: name, version, field, entries, action."""
    for w in _store(url).watchlists():
        action = "acts alone" if w.action is not None else "used by profiles"
        typer.echo(f"{w.name}\tv{w.version}\t{w.field}\t{len(w.entries)} entries\t{action}")


@watchlists_app.command("show")
def watchlists_show(name: str = typer.Argument(..., help="The watch list's name."), url: str | None = URL_OPTION) -> None:
    """One watch list as YAML."""
    from profiles import dump_profiles
    from serving.profile_store import NotFound

    try:
        w = _store(url).watchlist(name)
    except NotFound as exc:
        fail(str(exc))
        return
    typer.echo(dump_profiles([], [w]), nl=False)


@watchlists_app.command("import")
def watchlists_import(file: Path = typer.Argument(..., help="YAML with watch_lists:."),
                      url: str | None = URL_OPTION) -> None:
    """Store the file's watch lists: new ones as given, changed ones as a new version."""
    store = _store(url)
    profiles, lists = _load(file, store)
    if profiles:
        fail(f"{file} holds profiles too: import it with `riskprof profiles import`")
    _save(store, [], lists)


@watchlists_app.command("export")
def watchlists_export(out: Path | None = OUT_OPTION, url: str | None = URL_OPTION) -> None:
    """The latest version of every watch list as YAML."""
    from profiles import dump_profiles

    _write(dump_profiles([], _store(url).watchlists()), out)


def register(app: typer.Typer) -> None:
    app.add_typer(profiles_app, name="profiles")
    app.add_typer(watchlists_app, name="watchlists")

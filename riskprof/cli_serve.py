"""Serving commands: ``serve`` (the scoring API under uvicorn) and ``keys`` (API key management)."""

from __future__ import annotations

import typer
from rich.console import Console

from riskprof.cli_data import fail

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's
console = Console(stderr=True)
keys_app = typer.Typer(help="API keys of the scoring service (stored hashed; shown once).", no_args_is_help=True)

ROLES = ("officer", "analyst", "admin")


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (each loads the model; a reload "
                                                            "reaches only the worker that receives it, so set "
                                                            "RISKPROF_MODEL_POLL_SECONDS to let all follow the "
                                                            "alias)."),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="Log every request."),
    log_level: str = typer.Option("info", "--log-level", help=f"uvicorn log level: {', '.join(LOG_LEVELS)}."),
) -> None:
    """Start the scoring API (model from models:/<RISKPROF_MODEL_NAME>@champion, keys from the store)."""
    import uvicorn

    from serving.settings import get_serving_settings
    from serving.web.session import WebSettings

    if log_level.lower() not in LOG_LEVELS:
        fail(f"--log-level {log_level!r}: one of {', '.join(LOG_LEVELS)}")
    settings = get_serving_settings()  # a bad setting is said in one line by the command group, before
    WebSettings()  # uvicorn starts (there it would be a traceback in the log)
    _check_keys(settings)
    console.print(f"serving {settings.model_uri} on http://{host}:{port} (docs at /docs)", highlight=False)
    uvicorn.run("serving.app:create_app", factory=True, host=host, port=port, workers=workers,
                access_log=access_log, log_level=log_level.lower())


def _check_keys(settings) -> None:
    from riskprof.cli_db import open_store

    store = open_store(settings.resolved_database_url)
    try:
        n = store.count_active_keys()
    finally:
        store.dispose()
    if n == 0:
        if settings.env == "prod":
            fail("RISKPROF_ENV=prod and no API key exists: create one with `riskprof keys create --role admin "
                 "--name NAME` (no default key is accepted)")
        console.print("[yellow]warning:[/] no API key exists yet; every call but /health and /ready will be "
                      "refused. Create one with `riskprof keys create --role officer --name NAME`.")


def _store():
    from riskprof.cli_db import open_store
    from serving.settings import get_serving_settings

    return open_store(get_serving_settings().resolved_database_url)


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., "--role", help="officer (score, rank, outcomes), analyst (+ reports, model "
                                                 "info) or admin (+ reload)."),
    name: str = typer.Option(..., "--name", help="Who or what uses the key (shown in the audit log)."),
) -> None:
    """Create a key and print it once (only its salted hash is stored)."""
    if role not in ROLES:
        fail(f"--role must be one of {list(ROLES)}, got {role!r}")
    store = _store()
    try:
        key = store.create_api_key(name, role)
    except ValueError as exc:
        fail(str(exc))
        return
    finally:
        store.dispose()
    console.print(f"created {role} key {name!r}; it is shown only now:", highlight=False)
    typer.echo(key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (names, roles, dates; never the keys themselves)."""
    store = _store()
    try:
        rows = store.list_keys()
    finally:
        store.dispose()
    if not rows:
        console.print("no keys")
    for k in rows:
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        typer.echo(f"{k.name}\t{k.role}\t{k.key_id}\tcreated {k.created_at:%Y-%m-%d}\t{state}")


@keys_app.command("revoke")
def keys_revoke(name: str = typer.Option(..., "--name", help="Name of the key to revoke.")) -> None:
    """Revoke a key (every API process refuses it from its next request)."""
    store = _store()
    try:
        done = store.revoke_key(name)
    finally:
        store.dispose()
    if not done:
        fail(f"no active key named {name!r}")
    console.print(f"revoked {name!r}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")

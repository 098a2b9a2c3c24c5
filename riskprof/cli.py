"""The ``riskprof`` command line: thin Typer wrappers over library functions.

Commands live in ``riskprof/cli_*.py`` modules, one per area, and import heavy libraries inside
the command bodies so that ``riskprof --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from riskprof import (
    cli_data,
    cli_db,
    cli_demo,
    cli_model,
    cli_monitor,
    cli_profiles,
    cli_report,
    cli_retrain,
    cli_score,
    cli_serve,
)


class _Commands(TyperGroup):
    """The root command group: a bad ``RISKPROF_…`` setting, found when a command first reads the
    settings, a path the system refuses (a folder under a regular file, a folder given for a file), or a
    serving store that did not answer within ``RISKPROF_DB_TIMEOUT_SECONDS`` or cannot be reached, ends in
    one clear line and exit 2, never a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        try:
            return super().invoke(ctx)
        except OSError as exc:  # a path given that cannot be read or written: said with the path, no traceback
            cli_data.fail(os_problem(exc))
        except Exception as exc:
            from settings import settings_problem

            # a serving store that did not answer in time or cannot be reached: one line too
            problem = settings_problem(exc) or cli_db.store_problem(exc)
            if problem is None:
                raise
            cli_data.fail(problem)


def os_problem(exc: OSError) -> str:
    """``cannot use /etc/hostname/out: Not a directory``: the path(s) and the system's reason."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot use {' → '.join(paths)}: {reason}" if paths else f"{type(exc).__name__}: {reason}"


app = typer.Typer(
    cls=_Commands,
    name="riskprof",
    help="Customs risk profiling: data contracts, synthetic data, training, scoring and reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _area in (cli_data, cli_model, cli_retrain, cli_score, cli_report, cli_monitor, cli_serve, cli_db, cli_demo,
              cli_profiles):
    _area.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()

"""The ``riskprof`` command line: thin Typer wrappers over library functions.

Commands live in ``riskprof/cli_*.py`` modules, one per area, and import heavy libraries inside
the command bodies so that ``riskprof --help`` stays fast.
"""

from __future__ import annotations

import typer

from riskprof import cli_data

app = typer.Typer(
    name="riskprof",
    help="Customs risk profiling: data contracts, synthetic data, training, scoring and reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

cli_data.register(app)

for _module in ("cli_report", "cli_model", "cli_serve", "cli_score", "cli_demo"):
    try:
        _mod = __import__(f"riskprof.{_module}", fromlist=["register"])
    except ModuleNotFoundError as exc:  # area not built yet
        if exc.name != f"riskprof.{_module}":
            raise
        continue
    _mod.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()

"""``riskprof demo``: the main job on the embedded default, end to end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from riskprof.cli_data import console, fail

if TYPE_CHECKING:
    from settings import Settings


def demo(
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the generated data and of the training run."),
    declarations: int = typer.Option(200_000, "--declarations", min=5000, help="Declarations to generate."),
    out: Path | None = typer.Option(None, "--out", help="Where the report and scores go (default: <home>/out)."),
) -> None:
    """Generate calibrated synthetic data, train + register, promote, report, score a manifest, make an API key."""
    from settings import get_settings

    settings = get_settings()
    out_dir = (out or settings.home / "out").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = _generate_data(settings.data_path, seed, declarations)
    _train_and_register(paths, settings, seed)
    _promote_challenger(settings)
    _trend_report(paths["seizures"], out_dir)
    _score_last_week(paths["declarations"], out_dir, settings, seed)
    _api_key_for_the_demo()
    console.print(f"  MLflow UI: `make mlflow-ui` → http://127.0.0.1:5000   (demo took {time.perf_counter() - t0:.0f} s)",
                  highlight=False)


def _generate_data(data_dir: Path, seed: int, declarations: int) -> dict[str, Path]:
    from synthetic import generate

    console.rule("1. synthetic data calibrated to the WCO Illicit Trade Report 2023")
    paths = generate(data_dir, seed=seed, n_declarations=declarations)
    for name, path in paths.items():
        console.print(f"  {name}: {path}")
    return paths


def _train_and_register(paths: dict[str, Path], settings: Settings, seed: int) -> None:
    from training import train_and_log
    from training.data import load_training_set

    console.rule("2. training (time split, MLflow tracking, registry)")
    with console.status("training LightGBM and baselines…"):
        ts = load_training_set([paths["declarations"]], seizures=paths["seizures"], outcomes=paths["outcomes"])
        result = train_and_log(ts, settings.model_name, seed=seed, num_threads=settings.num_threads)
    m = result.metrics
    console.print(f"  run {result.run_id}: {settings.model_name} v{result.version} (challenger); MLflow store "
                  f"{settings.tracking_uri}", highlight=False)
    console.print("  test precision@1/2/5/10%: " + "  ".join(f"{m['precision_at'][k]:.3f}" for k in ("1", "2", "5", "10"))
                  + f"   AUC {m['auc']:.3f}", highlight=False)
    sb = result.selection_bias
    console.print(f"  hit rate of inspected items {sb['naive_hit_rate']:.3f}; random stratum (IPW) "
                  f"{sb['random_ipw_hit_rate']:.3f}", highlight=False)


def _promote_challenger(settings: Settings) -> None:
    from training.lifecycle import promote

    console.rule("3. promotion")
    decision = promote(settings.model_name, rate=settings.inspection_rate * 100)
    console.print(f"  {decision.message}", highlight=False)
    if not decision.promoted:
        fail("the new model was not promoted; the demo scores with the existing champion")


def _trend_report(seizures: Path, out_dir: Path) -> None:
    from reports import write_report

    console.rule("4. trend report")
    written = write_report(seizures, out_dir / "report")
    console.print(f"  {written['index.html']}  (+ {len(written) - 1} tables as CSV/JSON)", highlight=False)


def _score_last_week(declarations: Path, out_dir: Path, settings: Settings, seed: int) -> None:
    """The last week of declarations as a manifest, scored by the champion with the configured lanes."""
    import pandas as pd

    from batch import BatchOptions, score_manifest
    from scoring import LaneSettings

    console.rule("5. nightly batch scoring of a manifest")
    decl = pd.read_parquet(declarations)
    last = decl["declaration_date"].max()
    manifest = decl[decl["declaration_date"] > last - pd.Timedelta(days=7)]
    manifest_path = out_dir / "manifest.parquet"
    manifest.to_parquet(manifest_path, index=False)
    scores_path = out_dir / "scores.parquet"
    if scores_path.exists():
        scores_path.unlink()
    lanes = LaneSettings().lanes
    summary = score_manifest(manifest_path, scores_path, f"models:/{settings.model_name}@champion",
                             BatchOptions(capacity="5%", random_share=0.1, seed=seed, thresholds=lanes.fixed,
                                          lane_shares=lanes.shares))
    d = summary.as_dict()
    console.print(f"  {manifest_path.name}: {d['rows_scored']:,} items scored → {scores_path}; lanes {d['lanes']}; "
                  f"selected {d['selection']} ({d['reasons_note']})", highlight=False)


def _api_key_for_the_demo() -> None:
    from serving.settings import get_serving_settings
    from serving.store import Store

    console.rule("6. scoring service")
    store = Store.from_url(get_serving_settings().resolved_database_url)
    try:
        key = store.create_api_key(f"demo-admin-{int(time.time())}", "admin")
    finally:
        store.dispose()
    console.print("  an admin API key for this demo (shown once):", highlight=False)
    typer.echo(f"  {key}")
    console.print("  start the API with `.venv/bin/riskprof serve`, then e.g.\n"
                  f"  curl -s -H 'X-API-Key: {key}' http://127.0.0.1:8000/v1/model", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)

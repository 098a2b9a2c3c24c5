"""Write the embedded default data set (seizures, declarations, outcomes) as Parquet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synthetic._declarations import generate_declarations
from synthetic._seizures import generate_seizures

FILES = {"seizures": "seizures.parquet", "declarations": "declarations.parquet", "outcomes": "outcomes.parquet"}


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Deterministic Parquet: same frame, same bytes (no index, fixed compression)."""
    df.to_parquet(path, index=False, engine="pyarrow", compression="zstd")


def generate(out_dir: str | Path, seed: int = 0, n_declarations: int = 200_000) -> dict[str, Path]:
    """Generate seizures, declarations and outcomes into ``out_dir``; same seed, identical bytes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seizures = generate_seizures(seed)
    declarations, outcomes = generate_declarations(seizures, n=n_declarations, seed=seed)
    paths = {name: out / fname for name, fname in FILES.items()}
    write_parquet(seizures, paths["seizures"])
    write_parquet(declarations, paths["declarations"])
    write_parquet(outcomes, paths["outcomes"])
    return paths

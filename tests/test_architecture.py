"""The packages are layers: imports point down (docs/architecture.md), never into another's privates."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# what each package may import (besides itself); anything else is an upward or sideways import
ALLOWED = {
    "settings": set(),
    "features": set(),
    "scoring": {"features", "settings"},
    "synthetic": {"features"},
    "profiles": {"features", "scoring"},
    "reports": {"features"},
    "training": {"features", "scoring", "settings"},
    "batch": {"features", "scoring", "profiles", "settings"},
    "monitoring": {"features", "scoring", "settings", "synthetic", "training"},
    # serving reads batch outputs (batch.read_output: the workbench opens a nightly run as written)
    "serving": {"features", "scoring", "profiles", "reports", "settings", "training", "monitoring", "batch"},
    "riskprof": {"features", "scoring", "profiles", "reports", "settings", "training", "monitoring", "serving",
                 "batch", "synthetic"},
}


@functools.cache  # both tests below read every file: parsed once
def _imports(package: str) -> list[tuple[str, str]]:
    """(file, module) for every absolute import of one of our packages inside ``package``."""
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] in ALLOWED:
                    found.append((str(path.relative_to(REPO)), name))
    return found


def test_imports_point_down_the_layers() -> None:
    wrong = [(f, m) for pkg, allowed in ALLOWED.items() for f, m in _imports(pkg)
             if m.split(".")[0] not in allowed | {pkg}]
    assert wrong == [], f"imports against the layers (docs/architecture.md): {wrong}"


def test_no_package_imports_another_packages_private_module() -> None:
    wrong = [(f, m) for pkg in ALLOWED for f, m in _imports(pkg)
             if m.split(".")[0] != pkg and any(part.startswith("_") for part in m.split(".")[1:])]
    assert wrong == [], f"private modules imported across packages: {wrong}"


def test_every_package_is_listed() -> None:
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "notebooks", "benchmarks"}
    assert packages == set(ALLOWED), "a new package needs its place in the layers (ALLOWED and docs/architecture.md)"

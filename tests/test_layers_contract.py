"""The layers contract of `make lint` (.importlinter): an import that goes up a layer breaks it.

lint-imports runs on a copy of our packages in a temporary directory, first as it is (the contract holds), then
with one upward import added across each boundary of DESIGN.md's layers, so the tree itself is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("governance", "cases", "reviews", "metrics", "hitl_project")
# One import up across each boundary: governance < cases < reviews < metrics < hitl_project.
UPWARD = {
    "governance._upward": "cases.models",
    "cases._upward": "reviews.models",
    "reviews._upward": "metrics.models",
    "metrics._upward": "hitl_project.urls",
}


def copy_of_the_tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports of this virtualenv, reading the copy: first on the path, so it is found before the install."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_as_it_is_keeps_the_layers_contract(tmp_path: Path) -> None:
    result = lint_imports(copy_of_the_tree(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken." in result.stdout


def test_an_import_up_any_layer_breaks_the_contract(tmp_path: Path) -> None:
    tree = copy_of_the_tree(tmp_path)
    for module, target in UPWARD.items():
        (tree / Path(*module.split("."))).with_suffix(".py").write_text(f"import {target}\n")

    result = lint_imports(tree)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Layers: imports only go down BROKEN" in result.stdout
    for module, target in UPWARD.items():
        assert f"- {module} -> {target} (l.1)" in result.stdout

"""The standards the project holds itself to, checked with the suite: ``mypy --strict`` on the
package and ``ruff`` on everything."""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.conftest import REPO


def test_mypy_strict() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy", "src"], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-5000:]


def test_ruff() -> None:
    ruff = shutil.which("ruff")
    assert ruff is not None, "ruff is part of the test extra"
    proc = subprocess.run([ruff, "check", "src", "tests", "benchmarks"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-5000:]

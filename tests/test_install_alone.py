"""Each distribution installs alone in a fresh virtual environment, and the quick start of
its README runs as written (``.ci/check_installs.py`` does the work).

This is what a new user's first minutes look like; a dependency missing from a package's
pyproject fails here even when the test environment happens to have it installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("package", PACKAGES)
def test_package_installs_alone_and_its_quick_start_runs(package: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / ".ci" / "check_installs.py"), package],
        capture_output=True,
        text=True,
        timeout=1150,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert f"{package}: installed alone and ran its quick start" in result.stdout

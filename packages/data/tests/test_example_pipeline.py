"""The data tour in ``examples/`` runs as a user would run it, in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data_pipeline.py"


def test_the_data_pipeline_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "read:      200,000 orders in 8 files"
    segments = [line for line in lines if line.startswith("segment:")]
    assert [line.split()[1] for line in segments] == ["basic", "gold"]
    written = next(line for line in lines if line.startswith("write:"))
    counted = sum(int(line.split()[2].replace(",", "")) for line in segments)
    assert f"{counted:,} rows back" in written  # every joined row was written and read back
    assert lines[-1].startswith("done in")

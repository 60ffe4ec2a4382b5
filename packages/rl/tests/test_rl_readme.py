"""The README's quick start runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.usefixtures("local_cluster")


def test_the_quick_start_script_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    monkeypatch.setenv("HOME", str(tmp_path))  # the checkpoint goes under ~/nebula_results
    exec(compile(script, str(README), "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert f"checkpoint: {tmp_path}/nebula_results/PPO_CartPole-v1_" in out
    lines = out.strip().splitlines()
    iteration_lines = [line.split() for line in lines if re.match(r"^\d+ ", line)]
    saved_at = int(
        lines[lines.index(next(x for x in lines if x.startswith("checkpoint:"))) - 1].split()[0]
    )
    # training went on from the saved iteration
    assert [int(x[0]) for x in iteration_lines[-3:]] == [saved_at + 1, saved_at + 2, saved_at + 3]
    assert float(lines[-1]) > 100

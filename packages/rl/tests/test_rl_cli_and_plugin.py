"""The plugin (cheap to import, CLI and tune hooks) and ``nebula rl train|evaluate``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from nebula.rl import DQN, IMPALA, PPO, SAC
from nebula.rl._cli import parse_settings

from nebula.plugins import command_registry


def test_importing_the_plugin_loads_no_torch() -> None:
    code = (
        "import sys, nebula.plugins, nebula.rl._plugin\n"
        "nebula.plugins.get_plugin_manager()\n"
        "assert 'torch' not in sys.modules and 'gymnasium' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_rl_command_is_registered() -> None:
    assert "rl" in command_registry().names()


def test_the_tune_hook_registers_the_algorithms_by_name() -> None:
    from nebula.rl._plugin import nebula_register_tune_trainables

    added: dict[str, Any] = {}

    class Registry:
        def add(self, name: str, trainable: Any) -> None:
            added[name] = trainable

    nebula_register_tune_trainables(Registry())
    assert added == {"PPO": PPO, "DQN": DQN, "IMPALA": IMPALA, "SAC": SAC}


def test_config_pairs_parse_as_python_literals() -> None:
    assert parse_settings(["lr=0.001", "env_config={'a': 1}", "env=CartPole-v1"]) == {
        "lr": 0.001,
        "env_config": {"a": 1},
        "env": "CartPole-v1",
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_settings(["lr"])


def nebula_cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("nebula"))
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=240)


@pytest.mark.timeout(600)
def test_train_prints_progress_and_the_checkpoint_then_evaluate_replays_it(
    tmp_path: Path,
) -> None:
    ckpt = str(tmp_path / "ckpt")
    done = nebula_cli(
        "rl",
        "train",
        "--algo",
        "PPO",
        "--env",
        "CartPole-v1",
        "--stop-iters",
        "2",
        "--num-cpus",
        "2",
        "--checkpoint-dir",
        ckpt,
        "--config",
        "num_env_runners=1",
        "--config",
        "train_batch_size=200",
        "--config",
        "model_config={'fcnet_hiddens': [16]}",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("iter    1  return") and lines[1].startswith("iter    2")
    assert lines[-1] == f"checkpoint: {ckpt}"
    shown = nebula_cli("rl", "evaluate", ckpt, "--episodes", "3")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("episodes 3  return mean")


def test_train_refuses_a_misspelled_setting_before_starting() -> None:
    done = nebula_cli(
        "rl",
        "train",
        "--algo",
        "PPO",
        "--env",
        "CartPole-v1",
        "--stop-iters",
        "1",
        "--config",
        "lrr=0.1",
    )
    assert done.returncode == 1
    assert "has no setting 'lrr'; did you mean 'lr'?" in done.stderr

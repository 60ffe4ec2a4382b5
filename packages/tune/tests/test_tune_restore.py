"""A sweep whose driver is SIGKILLed mid-way is restored and finishes right."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import _tune_sweep_driver
import cloudpickle
import pytest

import nebula
from nebula import tune
from nebula.testing import wait_for_condition

cloudpickle.register_pickle_by_value(_tune_sweep_driver)


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def _state(path: str) -> dict:
    try:
        with open(os.path.join(path, "experiment_state.pkl"), "rb") as file:
            return cloudpickle.load(file)
    except (FileNotFoundError, EOFError):
        return {}


def _terminated(state: dict) -> set[str]:
    return {t.trial_id for t in state.get("trials", []) if t.status == "TERMINATED"}


def _ready_to_kill(state: dict) -> bool:
    trials = state.get("trials", [])
    unfinished_with_checkpoint = [
        t for t in trials if t.status != "TERMINATED" and t.checkpoint is not None
    ]
    return len(_terminated(state)) >= 3 and bool(unfinished_with_checkpoint)


def test_a_sigkilled_sweep_is_restored_without_rerunning_finished_trials(tmp_path):
    storage, log_dir = tmp_path / "results", tmp_path / "runs"
    log_dir.mkdir()
    (tmp_path / "runs-scratch").mkdir()
    driver = subprocess.Popen(
        [sys.executable, _tune_sweep_driver.__file__, str(storage), str(log_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    path = str(storage / _tune_sweep_driver.NAME)
    try:
        # Killed once 3 trials finished and an unfinished one has a checkpoint saved in the
        # experiment's state, so that restoring has something to resume from.
        wait_for_condition(
            lambda: _ready_to_kill(_state(path)) or driver.poll() is not None, timeout=90
        )
    finally:
        driver.send_signal(signal.SIGKILL)
        _, stderr = driver.communicate(timeout=30)
    before = _state(path)
    finished_before = _terminated(before)
    assert len(finished_before) >= 3, stderr.decode()[-2000:]
    assert len(finished_before) < 10, "the sweep ended before it could be killed"

    assert tune.Tuner.can_restore(path)
    tuner = tune.Tuner.restore(path, trainable=_tune_sweep_driver.train)
    results = tuner.fit()

    assert len(results) == 10 and results.num_errors == 0 and results.num_terminated == 10
    best = results.get_best_result()
    assert best.config["x"] == 3.2 and best.metrics["step"] == 8
    starts = {name: (log_dir / name).read_text().split() for name in os.listdir(log_dir)}
    for trial_id in finished_before:
        assert len(starts[trial_id]) == 1, f"finished trial {trial_id} ran again"
    resumed = [s for s in starts.values() if len(s) > 1]
    assert any(int(s[-1]) > 0 for s in resumed), f"no trial resumed from a checkpoint: {starts}"


def test_restore_of_a_path_without_an_experiment_says_so(tmp_path):
    with pytest.raises(ValueError, match="holds no tune experiment"):
        tune.Tuner.restore(str(tmp_path / "nothing"), trainable=_tune_sweep_driver.train)
    assert not tune.Tuner.can_restore(str(tmp_path / "nothing"))


def test_errored_trials_resume_or_restart_on_request(tmp_path):
    flag = tmp_path / "fail"
    flag.write_text("1")

    def flaky(config):
        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                start = int(Path(directory, "n").read_text())
        for n in range(start + 1, 4):
            directory = tmp_path / f"c{config['i']}-{n}"
            directory.mkdir(exist_ok=True)
            (directory / "n").write_text(str(n))
            tune.report(
                {"n": n, "start": start}, checkpoint=tune.Checkpoint.from_directory(str(directory))
            )
            if n == 2 and config["i"] == 1 and flag.exists():
                raise RuntimeError("flaky")

    tuner = tune.Tuner(
        flaky,
        param_space={"i": tune.grid_search([0, 1])},
        run_config=tune.RunConfig(name="flaky", storage_path=str(tmp_path), verbose=0),
    )
    assert tuner.fit().num_errors == 1
    flag.unlink()
    path = str(tmp_path / "flaky")
    copy = str(tmp_path / "moved" / "flaky")
    shutil.copytree(path, copy)
    results = tune.Tuner.restore(path, trainable=flaky).fit()
    assert results.num_errors == 1  # errored trials stay errored by default
    results = tune.Tuner.restore(path, trainable=flaky, resume_errored=True).fit()
    assert results.num_errors == 0 and results[1].metrics["start"] == 2
    results = tune.Tuner.restore(copy, trainable=flaky, restart_errored=True).fit()
    assert results.num_errors == 0 and results[1].metrics["start"] == 0
    assert results[1].path.startswith(copy) and results[0].checkpoint.path.startswith(copy)

"""A sweep run as its own driver process, so a test can SIGKILL it mid-sweep and restore it.

Usage: python _tune_sweep_driver.py STORAGE_PATH RUN_LOG_DIR
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from nebula import tune

NAME = "killed_sweep"
OPTIMUM = 3.0


def train(config):
    """Climbs towards -(x - 3)^2 over 8 steps, checkpointing every step."""
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory, open(os.path.join(directory, "step")) as f:
            start = int(f.read())
    with open(os.path.join(config["log_dir"], tune.get_context().get_trial_id()), "a") as log:
        log.write(f"{start}\n")
    for step in range(start + 1, 9):
        time.sleep(config["delay"])
        directory = tempfile.mkdtemp(dir=config["log_dir"] + "-scratch")
        with open(os.path.join(directory, "step"), "w") as f:
            f.write(str(step))
        score = -((config["x"] - OPTIMUM) ** 2) * step / 8
        tune.report(
            {"score": score, "step": step}, checkpoint=tune.Checkpoint.from_directory(directory)
        )


def make_tuner(storage_path: str, log_dir: str) -> tune.Tuner:
    return tune.Tuner(
        train,
        param_space={
            "x": tune.grid_search([0.0, 1.0, 2.5, 3.2, 5.0]),
            "jitter": tune.uniform(0, 1),
            "log_dir": log_dir,
            "delay": 0.15,
        },
        tune_config=tune.TuneConfig(
            metric="score",
            mode="max",
            num_samples=2,
            scheduler=tune.schedulers.ASHAScheduler(grace_period=2, reduction_factor=2, max_t=8),
        ),
        run_config=tune.RunConfig(name=NAME, storage_path=storage_path, verbose=0),
    )


if __name__ == "__main__":
    import nebula

    os.makedirs(sys.argv[2] + "-scratch", exist_ok=True)
    nebula.init(num_cpus=2)
    make_tuner(sys.argv[1], sys.argv[2]).fit()

"""Experiments stored on S3 (a local moto server), written and restored through URIs."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest

import nebula
from nebula import tune

moto_server = pytest.importorskip(
    "moto.server", reason="needs moto[server] (requirements-dev.txt)", exc_type=ImportError
)

BUCKET = "tune-test"
KEY, SECRET, REGION = "testing-key", "testing-secret", "us-east-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        address = f"{host}:{port}"
        pafs.S3FileSystem(
            endpoint_override=address,
            access_key=KEY,
            secret_key=SECRET,
            scheme="http",
            region=REGION,
            allow_bucket_creation=True,
        ).create_dir(BUCKET)
        yield address
    finally:
        server.stop()


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def _uri(endpoint: str, key: str) -> str:
    return f"s3://{KEY}:{SECRET}@{BUCKET}/{key}?endpoint_override={endpoint}&scheme=http&region={REGION}"


def _filesystem(endpoint: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        endpoint_override=endpoint, access_key=KEY, secret_key=SECRET, scheme="http", region=REGION
    )


def counter(config):
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = json.loads(Path(directory, "state.json").read_text())["step"]
    for step in range(start + 1, config["steps"] + 1):
        directory = tempfile.mkdtemp(dir=config["scratch"])
        with open(os.path.join(directory, "state.json"), "w") as file:
            json.dump({"step": step}, file)
        tune.report(
            {"score": config["x"] * step, "start": start},
            checkpoint=tune.Checkpoint.from_directory(directory),
        )
        if step == 2 and config["x"] == 2 and os.path.exists(config["flag"]):
            raise RuntimeError("interrupted")


def test_a_sweep_persists_logs_and_checkpoints_to_s3_and_restores_from_there(endpoint, tmp_path):
    flag = tmp_path / "fail"
    flag.write_text("1")
    space = {"x": tune.grid_search([1, 2]), "steps": 3, "flag": str(flag), "scratch": str(tmp_path)}
    results = tune.Tuner(
        counter,
        param_space=space,
        tune_config=tune.TuneConfig(metric="score", mode="max"),
        run_config=tune.RunConfig(name="s3exp", storage_path=_uri(endpoint, "sweeps"), verbose=0),
    ).fit()
    assert results.num_errors == 1
    best = results[1]
    assert best.metrics["score"] == 4
    assert best.checkpoint.filesystem.type_name == "s3"
    assert best.checkpoint.path.startswith(f"{BUCKET}/sweeps/s3exp/")
    fs = _filesystem(endpoint)
    keys = {
        info.path[len(f"{BUCKET}/sweeps/s3exp/") :]
        for info in fs.get_file_info(pafs.FileSelector(f"{BUCKET}/sweeps/s3exp", recursive=True))
    }
    assert {"experiment_state.pkl", "tuner.pkl"} <= keys
    trial_dir = best.path[len(f"{BUCKET}/sweeps/s3exp/") :]
    for name in ("result.json", "progress.csv", "params.json", "checkpoint_000001/state.json"):
        assert f"{trial_dir}/{name}" in keys
    with best.checkpoint.as_directory() as directory:
        assert json.loads(Path(directory, "state.json").read_text()) == {"step": 2}
    assert list(best.metrics_dataframe["score"]) == [2, 4]

    # Restore from the bucket alone: the failed trial resumes from its checkpoint on S3.
    flag.unlink()
    experiment = _uri(endpoint, "sweeps/s3exp")
    assert tune.Tuner.can_restore(experiment)
    restored = tune.Tuner.restore(experiment, trainable=counter, resume_errored=True).fit()
    assert restored.num_errors == 0
    best = restored.get_best_result()
    assert best.metrics["score"] == 6 and best.metrics["start"] == 2
    assert list(best.metrics_dataframe["score"]) == [2, 4, 6]

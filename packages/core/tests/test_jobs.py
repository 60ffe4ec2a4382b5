"""Jobs on a live two-node cluster: submitted over Ray's REST routes (by the client, the
CLI and raw HTTP), run with their runtime_env, followed, stopped, and kept as history
across a head restart; and the dashboard's access rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the dashboard extra (nebula-core[dashboard]) is needed")
pytest.importorskip("uvicorn", reason="the dashboard extra (nebula-core[dashboard]) is needed")

from nebula.job_submission import JobStatus, JobSubmissionClient
from nebula.testing import Cluster, wait_for_condition
from nebula.util import state

SCRIPT = """
import os, socket
import nebula
import helper
from mylib import shout

nebula.init()

@nebula.remote(scheduling_strategy="SPREAD")
def where(i):
    import time
    import helper
    time.sleep(0.3)  # all in flight at once: a finished lease is not reused for the rest
    return helper.double(i), nebula.get_runtime_context().get_node_id(), os.environ["GREETING"]

results = nebula.get([where.remote(i) for i in range(6)])
print("doubled", [r[0] for r in results])
print("nodes", len({r[1] for r in results}))
print(shout(results[0][2]))
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2}, include_dashboard=True)
    cluster.add_node(num_cpus=2)
    try:
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "app").mkdir()
    (root / "app" / "run.py").write_text(SCRIPT)
    (root / "app" / "helper.py").write_text("def double(x):\n    return 2 * x\n")
    (root / "mylib").mkdir()
    (root / "mylib" / "__init__.py").write_text("def shout(text):\n    return text.upper()\n")
    (root / "slow.py").write_text("import time\nprint('started', flush=True)\ntime.sleep(600)\n")
    return root


def _client(cluster: Cluster) -> JobSubmissionClient:
    assert cluster.dashboard_url is not None
    return JobSubmissionClient(cluster.dashboard_url)


def _wait_terminal(client: JobSubmissionClient, submission_id: str) -> JobStatus:
    wait_for_condition(lambda: client.get_job_status(submission_id).is_terminal(), timeout=90)
    return client.get_job_status(submission_id)


def test_a_job_runs_with_its_working_dir_modules_and_env_on_both_nodes(
    cluster: Cluster, project: Path
) -> None:
    client = _client(cluster)
    submission_id = client.submit_job(
        entrypoint="python run.py",
        runtime_env={
            "working_dir": str(project / "app"),
            "py_modules": [str(project / "mylib")],
            "env_vars": {"GREETING": "hello"},
        },
        metadata={"owner": "tests"},
    )
    assert _wait_terminal(client, submission_id) == JobStatus.SUCCEEDED, client.get_job_logs(
        submission_id
    )
    logs = client.get_job_logs(submission_id)
    assert "doubled [0, 2, 4, 6, 8, 10]" in logs
    assert "nodes 2" in logs and "HELLO" in logs
    info = client.get_job_info(submission_id)
    assert info.status == JobStatus.SUCCEEDED and info.metadata == {"owner": "tests"}
    assert info.runtime_env["working_dir"].startswith("pkg://")
    # The job's driver is a job of the cluster, with its tasks in the task table.
    assert info.job_id is not None
    ran = state.list_tasks(
        address=cluster.address, filters=[("job_id", "=", info.job_id), ("name", "=", "where")]
    )
    assert len(ran) == 6
    assert any(j.submission_id == submission_id for j in client.list_jobs())


def test_failures_and_stops_are_recorded(cluster: Cluster, project: Path) -> None:
    client = _client(cluster)
    failing = client.submit_job(entrypoint="python -c 'import sys; sys.exit(3)'")
    assert _wait_terminal(client, failing) == JobStatus.FAILED
    assert "exit code 3" in client.get_job_info(failing).message

    slow = client.submit_job(entrypoint="python slow.py", runtime_env={"working_dir": str(project)})
    wait_for_condition(lambda: "started" in client.get_job_logs(slow), timeout=60)
    assert client.stop_job(slow) is True
    assert _wait_terminal(client, slow) == JobStatus.STOPPED
    assert client.stop_job(slow) is False, "a stopped job is not running"
    with pytest.raises(RuntimeError, match="404"):
        client.get_job_info("no-such-job")


def test_ray_rest_routes_and_a_job_that_outlives_its_client(cluster: Cluster) -> None:
    assert cluster.dashboard_url is not None
    body = json.dumps(
        {"entrypoint": "echo from-rest", "submission_id": "rest-job", "runtime_env": {}}
    ).encode()
    request = urllib.request.Request(
        cluster.dashboard_url + "/api/jobs/",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.load(response) == {"job_id": "rest-job", "submission_id": "rest-job"}
    client = _client(cluster)
    assert _wait_terminal(client, "rest-job") == JobStatus.SUCCEEDED
    with urllib.request.urlopen(cluster.dashboard_url + "/api/jobs/rest-job/logs") as response:
        assert json.load(response)["logs"].strip() == "from-rest"

    # The CLI submits without waiting and exits; the job goes on.
    env = dict(os.environ, NEBULA_ADDRESS=cluster.dashboard_url)
    command = [sys.executable, "-m", "nebula._cli", "job", "submit", "--no-wait"]
    command += ["--submission-id", "outlives", "--", "python", "-c"]
    command += ["import time; time.sleep(1); print('still here')"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert _wait_terminal(client, "outlives") == JobStatus.SUCCEEDED
    assert "still here" in client.get_job_logs("outlives")


def test_cli_submit_streams_the_output_and_reports_the_outcome(
    cluster: Cluster, project: Path
) -> None:
    assert cluster.dashboard_url is not None
    env = dict(os.environ)
    base = [sys.executable, "-m", "nebula._cli", "job"]
    address = ["--address", cluster.dashboard_url]
    submitted = subprocess.run(
        [*base, "submit", *address, "--working-dir", str(project / "app"), "--runtime-env-json",
         json.dumps({"env_vars": {"GREETING": "hi"}, "py_modules": [str(project / "mylib")]}),
         "--submission-id", "cli-job", "--", "python", "run.py"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    assert "doubled [0, 2, 4, 6, 8, 10]" in submitted.stdout
    assert "succeeded" in submitted.stderr
    status = subprocess.run([*base, "status", *address, "cli-job"], env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert status.stdout.startswith("SUCCEEDED")
    listed = subprocess.run([*base, "list", *address], env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert "cli-job" in listed.stdout
    failed = subprocess.run([*base, "submit", *address, "--", "false"], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert failed.returncode == 1 and "failed" in failed.stderr
    # The job's driver log is on the head node, readable like any other log.
    logs = subprocess.run(
        [sys.executable, "-m", "nebula._cli", "logs", "--job-id", "cli-job", "--address",
         cluster.address],
        env=dict(env, NEBULA_CLUSTER_TOKEN=cluster.token), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert "doubled" in logs.stdout, logs.stderr


def test_job_history_survives_a_head_restart(cluster: Cluster) -> None:
    client = _client(cluster)
    before = {j.submission_id: j.status for j in client.list_jobs() if j.submission_id}
    assert before, "the tests above submitted jobs"
    cluster.restart_control_store()
    cluster.wait_for_nodes()
    after = {
        j.submission_id: j.status
        for j in state.list_jobs(address=cluster.address, limit=1000)
        if j.submission_id
    }
    assert after == before


def test_the_dashboard_beyond_loopback_requires_the_token(tmp_path: Path) -> None:
    # 127.0.0.2 is not the loopback address the dashboard trusts: it asks for the token.
    with Cluster(include_dashboard=True, dashboard_host="127.0.0.2") as guarded:
        url = guarded.dashboard_url
        assert url is not None and "127.0.0.2" in url
        for path in ("/api/v0/tasks", "/api/jobs/", "/metrics", "/"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url + path, timeout=10)
            assert refused.value.code == 401
        post = urllib.request.Request(
            url + "/api/jobs/",
            data=json.dumps({"entrypoint": f"touch {tmp_path}/ran"}).encode(),
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post, timeout=10)
        assert refused.value.code == 401
        with pytest.raises(PermissionError, match="get-auth-token"):
            JobSubmissionClient(url, headers={"Authorization": "Bearer wrong"})
        client = JobSubmissionClient(url, headers={"Authorization": f"Bearer {guarded.token}"})
        assert client.list_jobs() == []
        assert not (tmp_path / "ran").exists(), "a refused request runs nothing"
        # A browser signs in once; its cookie is good for reading only.
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(f"{url}/?token={guarded.token}", timeout=10) as page:
            assert b"Nebula" in page.read()
        with opener.open(url + "/api/jobs/", timeout=10) as listing:
            assert json.load(listing) == []
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(post, timeout=10)
        assert refused.value.code == 401


def test_runtime_env_checks_package_uris() -> None:
    from nebula import _runtime_env

    assert _runtime_env.validate({"working_dir": "pkg://_nebula_pkg_abc.zip"}) == {
        "working_dir": "pkg://_nebula_pkg_abc.zip"
    }
    with pytest.raises(ValueError, match=r"pkg://NAME\.zip"):
        _runtime_env.validate({"working_dir": "pkg://../etc"})
    with pytest.raises(TypeError, match="py_modules"):
        _runtime_env.validate({"py_modules": "not-a-list"})
    with pytest.raises(ValueError, match="not supported"):
        _runtime_env.validate({"pip": ["requests"]})


def test_packing_a_directory_is_deterministic(tmp_path: Path) -> None:
    from nebula import _runtime_env

    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    name, data = _runtime_env.pack_directory(str(tmp_path))
    again, _ = _runtime_env.pack_directory(str(tmp_path))
    assert name == again and name.startswith("_nebula_pkg_") and name.endswith(".zip")
    import io
    import zipfile

    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["a.py"]
    (tmp_path / "a.py").write_text("x = 2\n")
    assert _runtime_env.pack_directory(str(tmp_path))[0] != name

"""``runtime_env``: environment variables and a working directory for tasks and actors, set
per job, per task or actor, and inherited by nested tasks; unsupported keys are refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=1, runtime_env={"env_vars": {"JOB_LEVEL": "job"}})
    yield
    nebula.shutdown()


@nebula.remote
def read_env() -> tuple[str | None, str | None]:
    return os.environ.get("JOB_LEVEL"), os.environ.get("TASK_LEVEL")


@nebula.remote
def nested_env() -> tuple[str | None, str | None]:
    return nebula.get(read_env.remote())


@nebula.remote
def cwd_and_module() -> tuple[str, str]:
    import helper_in_working_dir  # type: ignore[import-not-found]

    return os.getcwd(), helper_in_working_dir.VALUE


@nebula.remote
class EnvActor:
    def read(self) -> str | None:
        return os.environ.get("TASK_LEVEL")


def test_job_env_vars_reach_every_task_and_task_env_vars_only_their_task() -> None:
    # One CPU: the same worker runs all of these, so a leak from one task would show.
    assert nebula.get(read_env.remote()) == ("job", None)
    with_vars = read_env.options(runtime_env={"env_vars": {"TASK_LEVEL": "t"}})
    assert nebula.get(with_vars.remote()) == ("job", "t")
    assert nebula.get(read_env.remote()) == ("job", None)
    overriding = read_env.options(runtime_env={"env_vars": {"JOB_LEVEL": "mine"}})
    assert nebula.get(overriding.remote()) == ("mine", None)


def test_nested_tasks_inherit_the_environment_of_their_parent() -> None:
    parent = nested_env.options(runtime_env={"env_vars": {"TASK_LEVEL": "parent"}})
    assert nebula.get(parent.remote()) == ("job", "parent")


def test_an_actor_keeps_its_environment_for_its_life() -> None:
    actor = EnvActor.options(runtime_env={"env_vars": {"TASK_LEVEL": "actor"}}).remote()
    assert nebula.get([actor.read.remote(), actor.read.remote()]) == ["actor", "actor"]
    nebula.kill(actor)


def test_working_dir_is_the_cwd_and_importable(tmp_path: Path) -> None:
    (tmp_path / "helper_in_working_dir.py").write_text("VALUE = 'from the working dir'\n")
    task = cwd_and_module.options(runtime_env={"working_dir": str(tmp_path)})
    assert nebula.get(task.remote()) == (str(tmp_path), "from the working dir")
    assert nebula.get(read_env.remote()) == ("job", None)  # the worker went back


@pytest.mark.parametrize(
    ("env", "error", "message"),
    [
        ({"pip": ["requests"]}, ValueError, "not supported"),
        ({"env_vars": {"A": 1}}, TypeError, "str to str"),
        ({"working_dir": "/no/such/dir"}, ValueError, "not a directory"),
        ("env", TypeError, "must be a dict"),
    ],
)
def test_bad_runtime_envs_are_refused_when_given(env: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        read_env.options(runtime_env=env)
    with pytest.raises(error, match=message):
        EnvActor.options(runtime_env=env)

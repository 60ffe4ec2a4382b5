"""What users see when things go wrong: remote exceptions, crashes, misuse, and worker logs."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

import nebula
from nebula.exceptions import ActorDiedError, NebulaError, TaskError, WorkerCrashedError
from nebula.testing import wait_for_condition

pytestmark = pytest.mark.usefixtures("nebula_cluster")


class InsufficientFundsError(Exception):
    """A user-defined exception raised inside a task."""


class OverdraftError(Exception):
    """A user-defined exception whose constructor does not take its message."""

    def __init__(self, balance: int, wanted: int) -> None:
        super().__init__(f"balance {balance} < {wanted}")
        self.balance = balance
        self.wanted = wanted


@nebula.remote
def raise_value_error(message: str) -> None:
    raise ValueError(message)


@nebula.remote
def withdraw(balance: int, wanted: int) -> int:
    if wanted > balance:
        raise InsufficientFundsError(f"balance {balance} < {wanted}")
    return balance - wanted


@nebula.remote
def overdraw(balance: int, wanted: int) -> None:
    raise OverdraftError(balance, wanted)


@nebula.remote
def identity(x: object) -> object:
    return x


@nebula.remote
class Account:
    def __init__(self, balance: int) -> None:
        self.balance = balance

    def withdraw(self, wanted: int) -> int:
        if wanted > self.balance:
            raise InsufficientFundsError(f"balance {self.balance} < {wanted}")
        self.balance -= wanted
        return self.balance

    def exit_process(self) -> None:
        os._exit(1)

    def ping(self) -> str:
        return "pong"


# ----------------------------------------------------------- remote exceptions


def test_remote_exception_is_both_task_error_and_its_own_class() -> None:
    with pytest.raises(ValueError, match="bad input") as info:
        nebula.get(raise_value_error.remote("bad input"))
    error = info.value
    assert isinstance(error, TaskError)
    assert isinstance(error, NebulaError)
    text = str(error)
    assert "Traceback" in text
    assert "raise_value_error" in text
    assert "bad input" in text
    assert isinstance(error.cause, ValueError)


def test_except_clause_for_the_original_class_catches_it() -> None:
    caught = None
    try:
        nebula.get(raise_value_error.remote("caught"))
    except ValueError as exc:
        caught = exc
    assert caught is not None and "caught" in str(caught)


def test_custom_exception_keeps_its_class() -> None:
    with pytest.raises(InsufficientFundsError) as info:
        nebula.get(withdraw.remote(10, 50))
    assert isinstance(info.value, TaskError)
    assert "balance 10 < 50" in str(info.value)
    assert nebula.get(withdraw.remote(50, 10)) == 40


def test_custom_exception_with_its_own_constructor_keeps_class_and_attributes() -> None:
    with pytest.raises(OverdraftError) as info:
        nebula.get(overdraw.remote(10, 50))
    assert (info.value.balance, info.value.wanted) == (10, 50)


def test_unpicklable_exception_still_reports_the_remote_traceback() -> None:
    with pytest.raises(TaskError) as info:
        nebula.get(overdraw.remote(10, 50))
    assert "OverdraftError" in str(info.value)
    assert "balance 10 < 50" in str(info.value)


def test_actor_method_exception_leaves_the_actor_usable() -> None:
    account = Account.remote(5)
    with pytest.raises(InsufficientFundsError):
        nebula.get(account.withdraw.remote(9))
    assert nebula.get(account.withdraw.remote(2)) == 3


def test_error_propagates_through_dependent_tasks() -> None:
    failed = raise_value_error.remote("upstream")
    downstream = identity.remote(failed)
    with pytest.raises(ValueError, match="upstream"):
        nebula.get(downstream)


@nebula.remote
def get_inside(ref_holder: list[Any]) -> object:
    return nebula.get(ref_holder[0])


def test_error_raised_through_a_task_that_waited_on_it_keeps_its_class() -> None:
    # The inner task's ValueError reaches the outer task as an error it did not catch.
    with pytest.raises(ValueError, match="deep down") as info:
        nebula.get(get_inside.remote([raise_value_error.remote("deep down")]))
    assert isinstance(info.value, TaskError)


def test_get_of_a_list_raises_the_first_error() -> None:
    refs = [identity.remote(1), raise_value_error.remote("in a list")]
    with pytest.raises(ValueError, match="in a list"):
        nebula.get(refs)


# ---------------------------------------------------------------- process death


def test_worker_crash_raises_worker_crashed_error() -> None:
    @nebula.remote(max_retries=0)
    def crash() -> None:
        os._exit(1)

    with pytest.raises(WorkerCrashedError):
        nebula.get(crash.remote(), timeout=30)
    # The node replaces the worker; later tasks run.
    assert nebula.get(identity.remote("alive"), timeout=30) == "alive"


def test_actor_process_death_raises_actor_died_error() -> None:
    account = Account.remote(1)
    assert nebula.get(account.ping.remote()) == "pong"
    with pytest.raises(ActorDiedError):
        nebula.get(account.exit_process.remote(), timeout=30)
    with pytest.raises(ActorDiedError):
        nebula.get(account.ping.remote(), timeout=30)


# ----------------------------------------------------------------- API misuse


def test_get_of_a_non_ref_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        nebula.get(1)
    with pytest.raises(TypeError):
        nebula.get([identity.remote(1), 2])


def test_wait_needs_a_list() -> None:
    ref = identity.remote(1)
    with pytest.raises(TypeError):
        nebula.wait(ref)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        nebula.wait([ref, "not a ref"])  # type: ignore[list-item]


def test_remote_function_cannot_be_called_directly() -> None:
    with pytest.raises(TypeError, match=r"\.remote"):
        identity(1)


def test_actor_class_cannot_be_instantiated_directly() -> None:
    with pytest.raises(TypeError, match=r"\.remote"):
        Account(1)


def test_actor_method_cannot_be_called_directly() -> None:
    account = Account.remote(1)
    with pytest.raises(TypeError, match=r"\.remote"):
        account.ping()


def test_put_of_an_object_ref_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        nebula.put(nebula.put(1))


@pytest.mark.parametrize(
    "options",
    [
        {"num_cpus": -1},
        {"num_gpus": -0.5},
        {"num_returns": -1},
        {"max_retries": -2},
        {"scheduling_strategy": "NO_SUCH_STRATEGY"},
    ],
    ids=lambda o: next(iter(o)),
)
def test_bad_task_options_are_value_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        identity.options(**options)
    with pytest.raises(ValueError):
        nebula.remote(**options)(lambda: None)


@pytest.mark.parametrize(
    "options",
    [
        {"max_concurrency": 0},
        {"num_cpus": -1},
        {"lifetime": "forever"},
        {"max_pending_calls": 0},
        {"concurrency_groups": {"io": 0}},
    ],
    ids=lambda o: next(iter(o)),
)
def test_bad_actor_options_are_value_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        Account.options(**options)


@pytest.mark.parametrize("options", [{"no_such_option": 1}, {"num_returns": 2}])
def test_unknown_options_are_type_errors(options: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match=next(iter(options))):
        Account.options(**options)
    with pytest.raises(TypeError, match="no_such_option"):
        identity.options(no_such_option=1)


def test_nebula_method_rejects_negative_num_returns() -> None:
    with pytest.raises(ValueError, match="num_returns"):
        nebula.method(num_returns=-1)


def test_get_with_a_negative_timeout_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="timeout"):
        nebula.get(identity.remote(1), timeout=-1)


# ------------------------------------------------------------------ worker logs


def test_worker_output_reaches_the_driver_with_a_pid_prefix(
    capfd: pytest.CaptureFixture[str],
) -> None:
    @nebula.remote
    def talk(marker: str) -> int:
        print(f"stdout says {marker}")
        print(f"stderr says {marker}", file=sys.stderr)
        return os.getpid()

    pid = nebula.get(talk.remote("m-4711"))
    out: list[str] = []
    err: list[str] = []

    def both_arrived() -> bool:
        captured = capfd.readouterr()
        out.append(captured.out)
        err.append(captured.err)
        return "stdout says m-4711" in "".join(out) and "stderr says m-4711" in "".join(err)

    wait_for_condition(both_arrived, timeout=10)
    assert f"(pid={pid}) stdout says m-4711" in "".join(out)
    assert f"(pid={pid}) stderr says m-4711" in "".join(err)


def test_actor_output_reaches_the_driver(capfd: pytest.CaptureFixture[str]) -> None:
    @nebula.remote
    class Talker:
        def say(self, text: str) -> None:
            print(text)

    talker = Talker.remote()
    nebula.get(talker.say.remote("actor line 9431"))
    seen: list[str] = []

    def arrived() -> bool:
        seen.append(capfd.readouterr().out)
        return "actor line 9431" in "".join(seen)

    wait_for_condition(arrived, timeout=10)
    line = next(x for x in "".join(seen).splitlines() if "actor line 9431" in x)
    assert line.startswith("(pid=")

"""Running tasks and actor methods inside a worker process.

Normal tasks and the methods of a plain actor run one at a time on the main thread (so a
cancel can interrupt them with a signal); a threaded actor runs methods on a pool of
``max_concurrency`` threads; an async actor runs them as coroutines on one event loop.
An actor's concurrency groups each get a pool of their own (threads, or a semaphore on the
event loop), so a slow group cannot starve another.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import os
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from nebula import _config, _runtime_env
from nebula import _protocol as p
from nebula._ids import generator_item_id, object_id_for_return
from nebula._serialization import _gc_paused, deserialize, loads_function, serialize
from nebula._transport import MessageTooLarge
from nebula._worker import task_events as ev
from nebula._worker.args import unpack_args
from nebula._worker.core_worker import CoreWorker
from nebula.exceptions import (
    TaskCancelledError,
    TaskError,
    ensure_picklable_cause,
)

_current = threading.local()


_gpu_ids: tuple[int, ...] = ()
_ORIGINAL_CUDA_DEVICES = os.environ.get("CUDA_VISIBLE_DEVICES")


_executor: Executor | None = None


def current_task() -> p.TaskSpec | None:
    return getattr(_current, "spec", None)


def current_executor() -> Executor | None:
    """This worker process's executor (None in a driver)."""
    return _executor


def set_gpu_ids(gpu_ids: tuple[int, ...]) -> None:
    """Expose exactly the lease's GPUs to the code that runs next (frameworks read this)."""
    global _gpu_ids
    _gpu_ids = gpu_ids
    if gpu_ids:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpu_ids)
    elif _ORIGINAL_CUDA_DEVICES is None:
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = _ORIGINAL_CUDA_DEVICES


def gpu_ids() -> list[int]:
    return list(_gpu_ids)


class Executor:
    def __init__(self, cw: CoreWorker, node_ip: str) -> None:
        global _executor
        _executor = self
        self.cw = cw
        self.node_ip = node_ip
        self.functions: dict[bytes, Any] = {}
        self.main_queue: queue.SimpleQueue[p.Message | None] = queue.SimpleQueue()
        self.actor: Any = None
        self.actor_id: bytes | None = None
        self.actor_class_name = ""
        # What the actor's own handle is built from (get_runtime_context().current_actor).
        self.actor_handle_args: tuple[bytes, str, str, type] | None = None
        # The placement group this actor, or the normal task running now, was placed in:
        # a worker-wide setting, so threads the user's code starts see it too.
        self.placement_group: p.PlacementGroupContext | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._group_pools: dict[str, ThreadPoolExecutor] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._group_semaphores: dict[str, asyncio.Semaphore] = {}
        self._group_sizes: dict[str, int] = {}
        # Normal tasks run here per function, for max_calls.
        self._calls: dict[bytes, int] = {}
        self._async_tasks: dict[bytes, asyncio.Future[Any]] = {}
        self._main_task: bytes | None = None
        self._cancel_main: bytes | None = None
        self._cancelled: set[bytes] = set()
        self._job_paths_added: set[str] = set()
        cw.on(p.PushTask, self._on_push_task)
        cw.on(p.CreateActorTask, self._on_create_actor)
        cw.on(p.CancelTask, self._on_cancel)
        signal.signal(signal.SIGINT, self._on_sigint)

    # ------------------------------------------------------------- receiving

    def _on_push_task(self, msg: p.PushTask) -> None:
        spec = msg.spec
        group = spec.concurrency_group
        if spec.actor_id is not None and group and group not in self._group_sizes:
            error = ValueError(
                f"{spec.name} was called in concurrency group {group!r}, which the actor does "
                f"not declare (its concurrency_groups: {', '.join(self._group_sizes) or 'none'})."
            )
            self.cw.send(spec.owner_address, self._failure(spec, error))
        elif self._loop is not None and spec.actor_id is not None:
            future = asyncio.run_coroutine_threadsafe(self._run_async(spec), self._loop)
            self._async_tasks[spec.task_id] = future  # type: ignore[assignment]
        elif group and spec.actor_id is not None:
            self._group_pools[group].submit(self._run_and_reply, spec)
        elif self._pool is not None and spec.actor_id is not None:
            self._pool.submit(self._run_and_reply, spec)
        else:
            self.main_queue.put(msg)

    def _on_create_actor(self, msg: p.CreateActorTask) -> None:
        self.main_queue.put(msg)

    def _on_cancel(self, msg: p.CancelTask) -> None:
        if msg.force:
            os._exit(1)
        self._cancelled.add(msg.task_id)
        future = self._async_tasks.get(msg.task_id)
        if future is not None:
            future.cancel()
        elif self._main_task == msg.task_id:
            self._cancel_main = msg.task_id
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._cancel_main is not None and self._cancel_main == self._main_task:
            self._cancel_main = None
            raise TaskCancelledError("the task was cancelled with nebula.cancel()")

    # ------------------------------------------------------------- main loop

    def run_forever(self) -> None:
        while True:
            msg = self._next_for_main()
            if msg is None:
                return
            if isinstance(msg, p.CreateActorTask):
                self._create_actor(msg)
            else:
                assert isinstance(msg, p.PushTask)
                self._main_task = msg.spec.task_id
                if msg.spec.actor_id is None:  # an actor keeps the GPUs it was created with
                    set_gpu_ids(msg.gpu_ids)
                try:
                    self._run_and_reply(msg.spec)
                finally:
                    self._main_task = None

    def _next_for_main(self) -> p.Message | None:
        """The next message for the main thread, reading the inbox on it while idle."""
        queued = self.main_queue
        while queued.empty():
            if not self.cw.inbox.read_until(lambda: not queued.empty(), None, idle=True):
                break
        return queued.get()

    def stop(self) -> None:
        self.main_queue.put(None)

    def _run_and_reply(self, spec: p.TaskSpec) -> None:
        done = self._execute(spec)
        if spec.max_calls and spec.actor_id is None:
            calls = self._calls[spec.function_id] = self._calls.get(spec.function_id, 0) + 1
            if calls >= spec.max_calls:
                # The owner gives the lease back with this worker to be stopped.
                done = dataclasses.replace(done, worker_retiring=True)
        self._reply(spec, done)

    def _reply(self, spec: p.TaskSpec, done: p.TaskDone) -> None:
        try:
            self.cw.send(spec.owner_address, done)
        except MessageTooLarge as exc:
            self.cw.send(spec.owner_address, self._failure(spec, exc))

    def _execute(self, spec: p.TaskSpec) -> p.TaskDone:
        _current.spec = spec
        if spec.actor_id is None:
            self.placement_group = spec.placement_group
        self.cw.task_events.state(spec, ev.RUNNING)
        try:
            if spec.task_id in self._cancelled:
                raise TaskCancelledError("the task was cancelled with nebula.cancel()")
            fn = self._callable(spec)
            args, kwargs = self._load_args(spec)
            # An actor's environment was set when it was created.
            environment: Any = (
                self._environment(spec.runtime_env)
                if spec.runtime_env and spec.actor_id is None
                else contextlib.nullcontext()
            )
            with environment:
                result = fn(*args, **kwargs)
                if inspect.iscoroutine(result):
                    result = asyncio.run(result)
                if spec.streaming:
                    result = self._stream(spec, result)
                elif inspect.isasyncgen(result):  # num_returns=N on a generator: its items
                    result = asyncio.run(_drain_async_generator(result))
                elif inspect.isgenerator(result):
                    result = list(result)
            return self._success(spec, result)
        except BaseException as exc:
            return self._failure(spec, exc)
        finally:
            _current.spec = None
            if spec.actor_id is None:
                self.placement_group = None
            self._cancelled.discard(spec.task_id)

    @contextlib.contextmanager
    def _environment(self, env: dict[str, Any] | None) -> Iterator[None]:
        """Run a task in its runtime_env; tasks it submits inherit that environment."""
        inherited = self.cw.runtime_env
        self.cw.runtime_env = env
        try:
            with _runtime_env.applied(env):
                yield
        finally:
            self.cw.runtime_env = inherited

    async def _run_async(self, spec: p.TaskSpec) -> None:
        semaphore = self._group_semaphores.get(spec.concurrency_group) or self._semaphore
        assert semaphore is not None
        async with semaphore:
            _current.spec = spec
            self.cw.task_events.state(spec, ev.RUNNING)
            try:
                fn = self._callable(spec)
                args, kwargs = self._load_args(spec)
                result = fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                if spec.streaming:  # on the actor's event loop
                    result = await self._stream_async(spec, result)
                elif inspect.isasyncgen(result):
                    result = await _drain_async_generator(result)
                elif inspect.isgenerator(result):
                    result = list(result)
                reply = self._success(spec, result)
            except asyncio.CancelledError:
                reply = self._failure(
                    spec, TaskCancelledError("the task was cancelled with nebula.cancel()")
                )
            except BaseException as exc:
                reply = self._failure(spec, exc)
            finally:
                _current.spec = None
                self._async_tasks.pop(spec.task_id, None)
        self._reply(spec, reply)

    # --------------------------------------------------------------- helpers

    def _callable(self, spec: p.TaskSpec) -> Callable[..., Any]:
        self._adopt_job(spec)
        if spec.actor_id is not None:
            if self.actor is None:
                raise RuntimeError("this worker holds no actor")
            return getattr(self.actor, spec.method_name or "")  # type: ignore[no-any-return]
        fn = self.functions.get(spec.function_id)
        if fn is None:
            if spec.function_bytes is None:
                raise RuntimeError(f"the definition of {spec.name}() never reached this worker")
            fn = loads_function(spec.function_bytes)
            self.functions[spec.function_id] = fn
        return fn  # type: ignore[no-any-return]

    def _adopt_job(self, spec: p.TaskSpec) -> None:
        cw = self.cw
        if cw.job_id != spec.job_id:
            cw.job_id = spec.job_id
            cw.namespace = spec.namespace
        if spec.job_sys_path:
            # Tasks this one submits must import the job's modules too.
            cw.job_sys_path = spec.job_sys_path
        for path in reversed(spec.job_sys_path):
            if path not in self._job_paths_added:
                self._job_paths_added.add(path)
                if path not in sys.path:
                    sys.path.insert(0, path)

    def _load_args(self, spec: p.TaskSpec) -> tuple[list[Any], dict[str, Any]]:
        values = []
        for value in spec.ref_args:
            if value.is_error:
                raise _ArgumentError(deserialize(value.inline or b""))
            values.append(self.cw.load(value))
        return unpack_args(deserialize(spec.args_blob), values)

    def _success(self, spec: p.TaskSpec, result: Any) -> p.TaskDone:
        if spec.num_returns == 1:
            results = [result]
        elif spec.num_returns == 0:
            results = []
        else:
            if not isinstance(result, (tuple, list)) or len(result) != spec.num_returns:
                raise ValueError(
                    f"{spec.name}() declared num_returns={spec.num_returns} but returned "
                    f"{type(result).__name__}"
                    + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
                )
            results = list(result)
        if len(results) <= 1:
            return self._store_returns(spec, results)
        # Thousands of values: the cyclic collector paused for all of them at once, not
        # toggled for each (re-enabled, it ran over the task's whole result again each time).
        with _gc_paused():
            return self._store_returns(spec, results)

    def _store_returns(self, spec: p.TaskSpec, results: list[Any]) -> p.TaskDone:
        returns: list[p.ObjectValue] = []
        # Thousands of small values would make one reply larger than a message may be:
        # they go ahead of it in parts of at most RETURNS_INLINE_MAX_BYTES.
        part_bytes = 0
        for index, value in enumerate(results, start=1):
            object_id = object_id_for_return(spec.task_id, index)
            serialized = serialize(value)
            self._lend_contained(serialized.contained_refs, spec.owner_address)
            stored = self.cw.store_value(object_id, serialized, spec.owner_address)
            size = len(stored.inline) if stored.inline is not None else 0
            if returns and part_bytes + size > _config.RETURNS_INLINE_MAX_BYTES:
                self.cw.send(spec.owner_address, p.TaskReturnsPart(spec.task_id, tuple(returns)))
                returns, part_bytes = [], 0
            returns.append(stored)
            part_bytes += size
        return p.TaskDone(spec.task_id, tuple(returns), self.cw.address)

    def _stream(self, spec: p.TaskSpec, produced: Any) -> int:
        """Send each item of a generator to the caller as it is yielded; return the count."""
        if inspect.isasyncgen(produced):
            return asyncio.run(self._stream_async(spec, produced))
        if not inspect.isgenerator(produced):
            raise TypeError(
                f"{spec.name}() was called as a generator (num_returns='streaming') but "
                f"returned {type(produced).__name__}."
            )
        count = 0
        for item in produced:
            self._send_item(spec, count, item)
            count += 1
        return count

    async def _stream_async(self, spec: p.TaskSpec, produced: Any) -> int:
        if not inspect.isasyncgen(produced):
            return self._stream(spec, produced)
        count = 0
        async for item in produced:
            self._send_item(spec, count, item)
            count += 1
        return count

    def _send_item(self, spec: p.TaskSpec, index: int, item: Any) -> None:
        serialized = serialize(item)
        self._lend_contained(serialized.contained_refs, spec.owner_address)
        object_id = generator_item_id(spec.task_id, index)
        value = self.cw.store_value(object_id, serialized, spec.owner_address)
        self.cw.send(spec.owner_address, p.StreamedItem(spec.task_id, index, value))

    def _lend_contained(self, refs: list[Any], caller: str) -> None:
        # The caller will own the value that holds these refs: register it as their
        # borrower before replying, so they cannot be freed in between.
        with self.cw.lock:
            for ref in refs:
                owner = ref.owner_address
                if owner == caller:
                    continue
                if owner == self.cw.address:
                    entry = self.cw.refs.get(ref.object_id)
                    if entry is not None:
                        entry.borrowers.add(caller)
                else:
                    self.cw.send(owner, p.AddBorrower(ref.object_id, caller))

    def _failure(self, spec: p.TaskSpec, exc: BaseException) -> p.TaskDone:
        if isinstance(exc, _ArgumentError):
            error: BaseException = exc.error
        elif isinstance(exc, (TaskCancelledError, KeyboardInterrupt)) and (
            spec.task_id in self._cancelled
        ):
            error = TaskCancelledError(f"{spec.name}() was cancelled with nebula.cancel().")
        else:
            error = TaskError(
                spec.name,
                _format_traceback(exc),
                ensure_picklable_cause(exc),
                os.getpid(),
                self.node_ip,
            )
        try:
            payload = serialize(error).to_bytes()
        except TypeError:
            payload = serialize(
                TaskError(spec.name, _format_traceback(exc), None, os.getpid(), self.node_ip)
            ).to_bytes()
        returns = tuple(
            p.ObjectValue(object_id_for_return(spec.task_id, i), inline=payload, is_error=True)
            for i in range(1, max(spec.num_returns, 1) + 1)
        )
        retryable = _is_retryable(spec.retry_exceptions, exc)
        self.cw.task_events.failed(spec, *ev.error_fields(error))
        return p.TaskDone(spec.task_id, returns, self.cw.address, payload, retryable)

    # ---------------------------------------------------------------- actors

    def _create_actor(self, msg: p.CreateActorTask) -> None:
        spec = msg.spec
        _current.spec = spec
        set_gpu_ids(msg.gpu_ids)
        self._adopt_job(spec)
        events = self.cw.task_events
        events.state(spec, ev.RUNNING)
        error = None
        try:
            cls = loads_function(spec.function_bytes or b"")
            args, kwargs = self._load_args(spec)
            self.actor_class_name = cls.__name__
            self.actor_id = msg.actor_id
            self.actor_handle_args = (msg.actor_id, spec.owner_address, cls.__name__, cls)
            self.placement_group = spec.placement_group
            _runtime_env.apply(spec.runtime_env)
            self.cw.runtime_env = spec.runtime_env
            self._group_sizes = dict(msg.concurrency_groups)
            if msg.is_async:
                self._start_event_loop(msg.max_concurrency)
            else:
                if msg.max_concurrency > 1:
                    self._pool = ThreadPoolExecutor(
                        msg.max_concurrency, thread_name_prefix="nebula-actor"
                    )
                self._group_pools = {
                    name: ThreadPoolExecutor(size, thread_name_prefix=f"nebula-actor-{name}")
                    for name, size in self._group_sizes.items()
                }
            self.actor = cls(*args, **kwargs)
            events.state(spec, ev.FINISHED)
        except BaseException as exc:
            failure = TaskError(
                f"{spec.name}.__init__",
                _format_traceback(exc),
                ensure_picklable_cause(exc),
                os.getpid(),
                self.node_ip,
            )
            events.failed(spec, *ev.error_fields(failure))
            error = serialize(failure).to_bytes()
        finally:
            _current.spec = None
        # The creator drops its hold on the constructor's arguments when it hears of the
        # creation: the owners of handles and refs kept from them must know of us first.
        self.cw.confirm_borrows()
        self.cw.send(
            msg.reply_to, p.ActorCreated(msg.actor_id, self.cw.address, os.getpid(), error)
        )

    def _start_event_loop(self, max_concurrency: int) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._semaphore = asyncio.Semaphore(max_concurrency)
            self._group_semaphores = {
                name: asyncio.Semaphore(size) for name, size in self._group_sizes.items()
            }
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, name="nebula-actor-loop", daemon=True).start()
        ready.wait()
        self._loop = loop


class _ArgumentError(Exception):
    """An argument's value is an error: the task fails with that same error."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _format_traceback(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    # Drop the executor's own frames: users want their code's frames only.
    text = "".join(lines)
    marker = 'executor.py", line'
    kept = [chunk for chunk in text.split("\n  File ") if marker not in chunk]
    return "\n  File ".join(kept)


def _is_retryable(retry_exceptions: bool | tuple[type, ...], exc: BaseException) -> bool:
    if isinstance(exc, (_ArgumentError, TaskCancelledError)):
        return False
    if retry_exceptions is True:
        return isinstance(exc, Exception)
    if isinstance(retry_exceptions, tuple) and retry_exceptions:
        return isinstance(exc, retry_exceptions)
    return False


async def _drain_async_generator(produced: Any) -> list[Any]:
    return [item async for item in produced]

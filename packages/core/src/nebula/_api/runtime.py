"""The process's connection to a cluster, and the public calls that use it."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import operator
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, NoReturn, TypeVar

from nebula import _auth, _config, _runtime_env
from nebula import _protocol as p
from nebula._api import options as opts
from nebula._api import placement_context, services
from nebula._api.actor import STREAMING, ActorHandle
from nebula._api.connect import (
    Runtime,
    connect_to_cluster,
    start_local_cluster,
    submitted_job_env,
)
from nebula._api.generator import ObjectRefGenerator
from nebula._api.object_ref import ObjectRef
from nebula._ids import new_actor_id, new_task_id, object_id_for_return
from nebula._serialization import Serialized
from nebula._worker.args import args_blob, pack_args
from nebula._worker.core_worker import CoreWorker, process_worker
from nebula._worker.submitter import PendingTask
from nebula.exceptions import PendingCallsLimitExceeded, TaskError

_state: Runtime | None = None
_OptionsT = TypeVar("_OptionsT", opts.TaskOptions, opts.ActorOptions)
_init_lock = threading.RLock()


def _runtime() -> Runtime | None:
    """This process's connection: a driver's from ``init``, or a worker's own core worker
    (the worker process created it before running anything; the API only finds it)."""
    global _state
    if _state is None:
        cw = process_worker()
        if cw is not None:
            _state = Runtime(cw, is_driver=False, namespace="")
    return _state


def core_worker_or_none() -> CoreWorker | None:
    state = _runtime()
    return state.core_worker if state is not None else None


def require_core_worker() -> CoreWorker:
    state = _runtime()
    if state is None:
        raise RuntimeError("Nebula is not initialized; call nebula.init() first.")
    return state.core_worker


def _auto_init() -> CoreWorker:
    if _runtime() is None:
        init()
    cw = require_core_worker()
    cw.check_alive()
    return cw


def is_initialized() -> bool:
    return _runtime() is not None


# ------------------------------------------------------------------ init/shutdown


class NebulaContext(dict):  # type: ignore[type-arg]
    """What ``init`` returns: address information, also usable as a context manager."""

    def __enter__(self) -> NebulaContext:
        return self

    def __exit__(self, *exc: object) -> None:
        shutdown()

    @property
    def address_info(self) -> dict[str, Any]:
        return dict(self)

    @property
    def dashboard_url(self) -> str | None:
        return self.get("dashboard_url")  # type: ignore[no-any-return]


def init(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    resources: dict[str, float] | None = None,
    object_store_memory: int | None = None,
    namespace: str | None = None,
    runtime_env: dict[str, Any] | None = None,
    log_to_driver: bool = True,
    ignore_reinit_error: bool = False,
    include_dashboard: bool | None = None,
    dashboard_host: str = "127.0.0.1",
    dashboard_port: int | None = None,
    logging_level: int | str | None = None,
    _node_ip_address: str | None = None,
    _cluster_token: str | None = None,
    **unknown: Any,
) -> NebulaContext:
    """Start a local cluster, or connect to one at ``address`` ("HOST:PORT" or "auto").

    ``logging_level`` sets the level of Nebula's own loggers in this process (``"nebula"``).
    An argument Nebula does not take is a ``TypeError`` naming the closest one it does.
    """
    global _state
    for key in unknown:
        raise opts.unknown_keyword(key, _INIT_KEYWORDS, "nebula.init()'s arguments")
    if logging_level is not None:
        import logging

        logging.getLogger("nebula").setLevel(logging_level)
    with _init_lock:
        current = _runtime()
        if current is not None:
            if ignore_reinit_error:
                return _context(current)
            raise RuntimeError(
                "nebula.init() was already called; call nebula.shutdown() first or pass "
                "ignore_reinit_error=True."
            )
        _validate_init(num_cpus, num_gpus, resources, object_store_memory)
        job_env = _runtime_env.merge(submitted_job_env(), _runtime_env.validate(runtime_env))
        address = address or os.environ.get("NEBULA_ADDRESS") or None
        namespace = namespace or _anonymous_namespace()
        if address is None or address == "local":
            dashboard = _dashboard_wanted(include_dashboard, dashboard_host, dashboard_port)
            state = start_local_cluster(
                num_cpus,
                num_gpus,
                resources,
                object_store_memory,
                namespace,
                log_to_driver,
                dashboard,
            )
            _announce(state, include_dashboard)
        else:
            if num_cpus is not None or num_gpus is not None or resources:
                raise ValueError(
                    "num_cpus, num_gpus and resources describe a new local cluster; they "
                    "cannot be given when connecting to an existing one with address=."
                )
            state = connect_to_cluster(address, namespace, log_to_driver, _cluster_token)
        state.core_worker.runtime_env = job_env
        _state = state
        atexit.register(shutdown)
        return _context(state)


_INIT_KEYWORDS = frozenset(
    {
        "address",
        "num_cpus",
        "num_gpus",
        "resources",
        "object_store_memory",
        "namespace",
        "runtime_env",
        "log_to_driver",
        "ignore_reinit_error",
        "include_dashboard",
        "dashboard_host",
        "dashboard_port",
        "logging_level",
    }
)


def _validate_init(num_cpus: Any, num_gpus: Any, resources: Any, object_store_memory: Any) -> None:
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
        if value is not None:
            opts.non_negative_number(name, value)
    if resources is not None:
        opts.check_resources(resources)
    if object_store_memory is not None and (
        not isinstance(object_store_memory, int) or object_store_memory <= 0
    ):
        raise ValueError(
            f"object_store_memory must be a positive number of bytes, got {object_store_memory!r}."
        )


def _anonymous_namespace() -> str:
    return f"anonymous-{os.getpid()}-{os.urandom(3).hex()}"


def _dashboard_wanted(include: bool | None, host: str, port: int | None) -> tuple[str, int] | None:
    """Where a new local cluster's dashboard listens, or None for no dashboard: by default
    there is one when its dependencies are installed (NEBULA_INCLUDE_DASHBOARD=0: none)."""
    from nebula._dashboard import launch

    if include is None:
        include = _config.include_dashboard()
    if not include or not launch.available():
        return None
    return host, port or launch.DEFAULT_PORT


def _announce(state: Runtime, include: bool | None) -> None:
    from nebula._dashboard import launch

    url = state.extra.get("dashboard_url")
    if url is not None:
        sys.stderr.write(f"Started a local Nebula cluster; the dashboard is at {url}\n")
    elif include is not False and _config.include_dashboard():
        sys.stderr.write(f"Started a local Nebula cluster; {launch.UNAVAILABLE}.\n")


def dashboard_url() -> str | None:
    """The dashboard's address: as the dashboard published it, else as planned at init."""
    from nebula._dashboard.launch import DASHBOARD_URL_KEY

    state = _runtime()
    if state is None:
        raise RuntimeError("Nebula is not initialized; call nebula.init() first.")
    cw = state.core_worker
    planned = state.extra.get("dashboard_url")
    deadline = time.monotonic() + (10.0 if planned else 0.0)
    while True:
        reply = cw.call(cw.control_store, lambda rid, to: p.KvGet(rid, to, DASHBOARD_URL_KEY))
        assert isinstance(reply, p.KvReply)
        if reply.value is not None:
            return reply.value.decode()
        if time.monotonic() >= deadline:
            return planned  # type: ignore[no-any-return]
        time.sleep(0.05)


def _context(state: Runtime) -> NebulaContext:
    cw = state.core_worker
    return NebulaContext(
        address=state.address,
        session_dir=state.session_dir,
        node_id=cw.node_id.hex(),
        job_id=cw.job_id,
        namespace=state.namespace,
        dashboard_url=state.extra.get("dashboard_url"),
    )


def shutdown() -> None:
    """Disconnect; if this process started the cluster, stop it and free its memory."""
    global _state
    with _init_lock:
        state = _runtime()
        if state is None or not state.is_driver:
            return
        _state = None
        cw = state.core_worker
        cw.flush_task_events(force=True)
        cw.send(cw.control_store, p.FinishJob(cw.job_id))
        cluster = state.local_cluster
        if cluster is None:
            _free_owned_objects(cw)
        cw.shutdown()
        if cluster is not None:
            services.stop_processes(cluster.processes)
            _auth.remove_token_file(_config.TEMP_DIR, cluster.control_store)
            from nebula._object_store import shm

            shm.delete_session_objects(cluster.session_tag)
        _notify_job_finished(cw.job_id, state.namespace)


def _free_owned_objects(cw: CoreWorker) -> None:
    with cw.lock:
        shm_ids = tuple(
            e.object_id
            for e in cw.refs.entries.values()
            if e.owned and e.value is not None and e.value.shm is not None
        )
    if shm_ids:
        cw.send(cw.node_manager, p.FreeObjects(shm_ids))


def _notify_job_finished(job_id: int, namespace: str) -> None:
    try:
        from nebula._plugins.lifecycle import JobInfo
        from nebula._plugins.manager import get_plugin_manager

        get_plugin_manager().hook.nebula_job_finished(
            job=JobInfo(job_id=str(job_id), driver_pid=os.getpid(), namespace=namespace)
        )
    except Exception as exc:  # a broken plugin must not break shutdown
        sys.stderr.write(f"Warning: a plugin failed in nebula_job_finished: {exc!r}\n")


# ------------------------------------------------------------------- submission


def _namespace() -> str:
    cw = require_core_worker()
    state = _runtime()
    return cw.namespace or (state.namespace if state else "")


def submit_task(
    *,
    name: str,
    function_id: bytes,
    function_bytes: bytes,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: opts.TaskOptions,
    streaming: bool = False,
) -> Any:
    cw = _auto_init()
    options, pg_context = _placed(options)
    if _config.MAX_QUEUED_TASKS > 0:
        _admit(cw, name)
    declared = options.num_returns
    num_returns = 1 if streaming or declared is None or declared == "streaming" else declared
    serialized, arg_refs = pack_args(args, kwargs, ObjectRef)
    blob = args_blob(serialized, arg_refs, functools.partial(_put_args, cw))
    task_id = new_task_id()
    return_ids = tuple(object_id_for_return(task_id, i) for i in range(1, num_returns + 1))
    refs = [ObjectRef(oid, cw.address) for oid in return_ids]
    spec = p.TaskSpec(
        task_id=task_id,
        job_id=cw.job_id,
        name=name,
        owner_address=cw.address,
        function_id=function_id,
        function_bytes=None,
        args_blob=blob,
        ref_args=(),
        num_returns=num_returns,
        retry_exceptions=options.retry_exceptions,
        job_sys_path=cw.job_sys_path,
        namespace=_namespace(),
        runtime_env=_runtime_env.merge(cw.runtime_env, options.runtime_env),
        streaming=streaming,
        max_calls=options.calls_per_worker(),
        placement_group=pg_context,
    )
    task = PendingTask(
        spec,
        return_ids,
        arg_refs,
        list(serialized.contained_refs),
        function_bytes,
        resources=options.resource_request(default_cpus=1),
        strategy=options.scheduling_strategy,
        retries_left=options.retries(),
    )
    with cw.lock:
        if streaming:
            cw.streams.open(task_id)
        cw.submitter.submit(task)
    return _handed_back(refs, task_id, streaming)


def _placed(options: _OptionsT) -> tuple[_OptionsT, p.PlacementGroupContext | None]:
    """The options with a captured placement group filled in, and the group's context."""
    strategy, context = placement_context.resolve(options.scheduling_strategy)
    if strategy is not options.scheduling_strategy:
        options = dataclasses.replace(options, scheduling_strategy=strategy)
    return options, context


def _admit(cw: CoreWorker, name: str) -> None:
    """Hold a submission back (or refuse it) while MAX_QUEUED_TASKS are unfinished."""
    limit = _config.MAX_QUEUED_TASKS
    tasks = cw.submitter.tasks
    if len(tasks) < limit:
        return
    if _config.QUEUED_TASKS_FULL == "error":
        raise PendingCallsLimitExceeded(
            f"{name}.remote() would make {limit + 1:,} unfinished tasks from this process, "
            f"more than NEBULA_MAX_QUEUED_TASKS={limit:,}; wait for some with nebula.wait() "
            "first, or set NEBULA_QUEUED_TASKS_FULL=block to wait here instead."
        )
    cw.wait_until(lambda: len(tasks) < limit, None)


def _put_args(cw: CoreWorker, serialized: Serialized) -> ObjectRef:
    ref: ObjectRef = cw.put_serialized(serialized, owner_ref_factory=ObjectRef)
    return ref


def _handed_back(refs: list[ObjectRef], task_id: bytes, streaming: bool) -> Any:
    """What ``.remote()`` returns: one ref, a list of them, or a generator's refs."""
    if streaming:
        return ObjectRefGenerator(refs[0], task_id)
    return refs[0] if len(refs) == 1 else refs


def create_actor(
    *,
    class_name: str,
    class_bytes: bytes,
    method_meta: dict[str, p.MethodMeta],
    is_async: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: opts.ActorOptions,
) -> ActorHandle:
    cw = _auto_init()
    options, pg_context = _placed(options)
    namespace = options.namespace or _namespace()
    name = options.name
    if name is not None and options.get_if_exists:
        try:
            return get_actor(name, namespace)
        except ValueError:
            pass
    serialized, arg_refs = pack_args(args, kwargs, ObjectRef)
    # Creation arguments are resolved here so the control store never waits on an owner.
    ref_values = tuple(cw.get_values(arg_refs, None)) if arg_refs else ()
    actor_id = new_actor_id()
    creation = p.TaskSpec(
        task_id=new_task_id(),
        job_id=cw.job_id,
        name=class_name,
        owner_address=cw.address,
        function_id=actor_id,
        function_bytes=class_bytes,
        args_blob=serialized.to_bytes(),
        ref_args=ref_values,
        num_returns=0,
        job_sys_path=cw.job_sys_path,
        namespace=namespace,
        runtime_env=_runtime_env.merge(cw.runtime_env, options.runtime_env),
        placement_group=pg_context,
    )
    max_concurrency = options.max_concurrency or (1000 if is_async else 1)
    spec = p.ActorSpec(
        actor_id=actor_id,
        job_id=cw.job_id,
        class_name=class_name,
        owner_address=cw.address,
        creation=creation,
        resources=options.resource_request(default_cpus=0),
        name=name,
        namespace=namespace,
        detached=options.lifetime == "detached",
        max_concurrency=max_concurrency,
        is_async=is_async,
        max_restarts=options.max_restarts,
        max_task_retries=options.max_task_retries,
        strategy=options.scheduling_strategy,
        method_meta=method_meta,
        concurrency_groups=dict(options.concurrency_groups),
        max_pending_calls=options.max_pending_calls,
    )
    with cw.lock:
        cw.refs.owned(actor_id, is_actor=True)
    _record_actor_creation(cw, spec)
    handle = ActorHandle(
        actor_id,
        cw.address,
        class_name,
        method_meta,
        spec.max_task_retries,
        spec.max_pending_calls,
    )
    if name is not None:
        reply = cw.call(cw.control_store, lambda rid, reply_to: p.CreateActor(rid, reply_to, spec))
        assert isinstance(reply, p.CreateActorReply)
        if reply.error is not None:
            raise ValueError(reply.error)
    else:
        cw.send(cw.control_store, p.CreateActor(0, cw.address, spec))
    with cw.lock:
        # Subscribe after CreateActor: both travel on one socket, so the order holds.
        client = cw.submitter.actor_state(actor_id)
        client.creation_pins.extend(serialized.contained_refs)
    return handle


def _record_actor_creation(cw: CoreWorker, spec: p.ActorSpec) -> None:
    from nebula._worker import task_events as ev
    from nebula._worker.executor import current_task

    parent = current_task()
    cw.task_events.submitted(
        dataclasses.replace(spec.creation, name=f"{spec.class_name}.__init__"),
        ev.PENDING_NODE_ASSIGNMENT,
        ev.ACTOR_CREATION_TASK,
        spec.resources or None,
        parent.task_id if parent is not None else None,
        actor_id=spec.actor_id,
    )


def submit_actor_task(
    handle: ActorHandle,
    method_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    meta: p.MethodMeta,
) -> Any:
    cw = _auto_init()
    streaming = meta.num_returns == STREAMING
    num_returns = 1 if streaming else meta.num_returns
    retries = handle._max_task_retries if meta.max_task_retries is None else meta.max_task_retries
    serialized, arg_refs = pack_args(args, kwargs, ObjectRef)
    blob = args_blob(serialized, arg_refs, functools.partial(_put_args, cw))
    task_id = new_task_id()
    return_ids = tuple(object_id_for_return(task_id, i) for i in range(1, num_returns + 1))
    refs = [ObjectRef(oid, cw.address) for oid in return_ids]
    # One critical section from the sequence number to the submission: calls stay in order.
    with cw.lock:
        limit = handle._max_pending_calls
        if limit > 0 and cw.submitter.pending_actor_calls(handle.actor_id) >= limit:
            raise PendingCallsLimitExceeded(
                f"{handle._class_name} already has {limit} unfinished calls from this caller "
                f"(max_pending_calls={limit}); wait for some of them before calling again."
            )
        sequence_no = cw.submitter.next_sequence_no(handle.actor_id)
        spec = p.TaskSpec(
            task_id=task_id,
            job_id=cw.job_id,
            name=f"{handle._class_name}.{method_name}",
            owner_address=cw.address,
            function_id=b"",
            function_bytes=None,
            args_blob=blob,
            ref_args=(),
            num_returns=num_returns,
            actor_id=handle.actor_id,
            method_name=method_name,
            sequence_no=sequence_no,
            namespace=_namespace(),
            streaming=streaming,
            retry_exceptions=meta.retry_exceptions,
            concurrency_group=meta.concurrency_group,
        )
        task = PendingTask(
            spec,
            return_ids,
            arg_refs,
            [handle, *serialized.contained_refs],
            None,
            retries_left=retries,
        )
        if streaming:
            cw.streams.open(task_id)
        cw.submitter.submit(task)
    return _handed_back(refs, task_id, streaming)


# -------------------------------------------------------------------- objects


def put(value: Any) -> ObjectRef:
    if isinstance(value, ObjectRef):
        raise TypeError(
            "Calling nebula.put() on an ObjectRef is not allowed; pass the ref itself instead."
        )
    cw = _auto_init()
    return cw.put(value, owner_ref_factory=ObjectRef)  # type: ignore[no-any-return]


def get(refs: Any, *, timeout: float | None = None) -> Any:
    cw = require_core_worker()
    single = isinstance(refs, ObjectRef)
    if single:
        ref_list = [refs]
    elif isinstance(refs, (list, tuple)):
        ref_list = list(refs)
        for item in ref_list:
            if not isinstance(item, ObjectRef):
                raise TypeError(
                    "nebula.get() expects an ObjectRef or a list of ObjectRefs; the list "
                    f"holds a {type(item).__name__}."
                )
    else:
        raise TypeError(
            f"nebula.get() expects an ObjectRef or a list of ObjectRefs, got {type(refs).__name__}."
        )
    _check_timeout(timeout)
    values = cw.get_values(ref_list, timeout)
    results = []
    for ref, value in zip(ref_list, values):
        result = _load_or_refetch(cw, ref, value, timeout)
        if value.is_error:
            if isinstance(result, TaskError):
                raise result.as_instanceof_cause()
            raise result
        results.append(result)
    return results[0] if single else results


def _load_or_refetch(
    cw: CoreWorker, ref: ObjectRef, value: p.ObjectValue, timeout: float | None
) -> Any:
    """Load a value; if it was lost meanwhile and is being rebuilt, wait for the new one."""
    from nebula.exceptions import ObjectLostError

    for _ in range(3):
        try:
            return cw.load(value)
        except ObjectLostError:
            fresh = cw.get_values([ref], timeout)[0]
            if fresh is value:
                raise
            value = fresh
    return cw.load(value)


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
    ):
        raise ValueError(f"timeout must be None or a non-negative number, got {timeout!r}.")


_object_id_of = operator.attrgetter("_id")


def wait(
    refs: Sequence[ObjectRef],
    *,
    num_returns: int = 1,
    timeout: float | None = None,
    fetch_local: bool = True,
) -> tuple[list[ObjectRef], list[ObjectRef]]:
    cw = require_core_worker()
    if isinstance(refs, ObjectRef) or not isinstance(refs, (list, tuple)):
        raise TypeError(f"nebula.wait() expects a list of ObjectRefs, got {type(refs).__name__}.")
    # map() keeps these checks at C speed: callers poll wait() on long lists.
    if not set(map(type, refs)) <= {ObjectRef}:
        bad = next(item for item in refs if not isinstance(item, ObjectRef))
        raise TypeError(
            f"nebula.wait() expects a list of ObjectRefs; the list holds a {type(bad).__name__}."
        )
    if len(set(map(_object_id_of, refs))) != len(refs):
        raise ValueError("nebula.wait() requires a list of unique ObjectRefs.")
    if not isinstance(num_returns, int) or isinstance(num_returns, bool) or num_returns < 1:
        raise ValueError(f"num_returns must be a positive integer, got {num_returns!r}.")
    _check_timeout(timeout)
    if not refs:
        return [], []  # as Ray does: nothing to wait for, whatever num_returns says
    if num_returns > len(refs):
        raise ValueError(
            f"num_returns ({num_returns}) cannot exceed the number of refs ({len(refs)})."
        )
    return cw.wait(list(refs), num_returns, timeout)


def cancel(
    ref: ObjectRef | ObjectRefGenerator, *, force: bool = False, recursive: bool = True
) -> None:
    if isinstance(ref, ObjectRefGenerator):
        ref = ref.completed()
    if not isinstance(ref, ObjectRef):
        raise TypeError(f"nebula.cancel() expects an ObjectRef, got {type(ref).__name__}.")
    cw = require_core_worker()
    if ref.owner_address != cw.address:
        raise ValueError(
            "Only the process that submitted a task can cancel it; this ObjectRef is borrowed."
        )
    with cw.lock:
        cw.submitter.cancel(ref.object_id, force)


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    if not isinstance(actor, ActorHandle):
        raise TypeError(f"nebula.kill() expects an actor handle, got {type(actor).__name__}.")
    cw = require_core_worker()
    cw.send(cw.control_store, p.KillActor(actor.actor_id, no_restart))
    if no_restart:
        # Calls made from here on fail at once, rather than racing the kill to the actor.
        with cw.lock:
            cw.submitter.mark_actor_dead(actor.actor_id, "the actor was killed by nebula.kill()")


def list_actors() -> list[dict[str, Any]]:
    """Every actor the control store knows (dead ones too), as records."""
    cw = require_core_worker()
    reply = cw.call(cw.control_store, lambda rid, reply_to: p.ListActors(rid, reply_to))
    assert isinstance(reply, p.ActorListReply)
    return [dict(record) for record in reply.actors]


def list_named_actors(all_namespaces: bool = False) -> list[str] | list[dict[str, str]]:
    namespace = _namespace()
    named = sorted(
        (record["namespace"], record["name"])
        for record in list_actors()
        if record["name"]
        and record["state"] != "DEAD"
        and (all_namespaces or record["namespace"] == namespace)
    )
    if all_namespaces:
        return [{"name": name, "namespace": space} for space, name in named]
    return [name for _, name in named]


def exit_actor() -> NoReturn:
    from nebula._worker.executor import current_task

    spec = current_task()
    if spec is None or spec.actor_id is None:
        raise TypeError("exit_actor() can only be called inside an actor's method.")
    cw = require_core_worker()
    reason = "the actor exited with nebula.actor.exit_actor()"
    cw.send(cw.control_store, p.KillActor(spec.actor_id, True, reason))
    # The control store marks the actor dead (never to restart), then has this worker
    # killed; calls still pending fail with ActorDiedError naming the reason.
    time.sleep(_config.EXIT_ACTOR_WAIT_S)
    os._exit(0)


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    if not isinstance(name, str) or not name:
        raise ValueError(f"get_actor() needs a non-empty actor name, got {name!r}.")
    cw = require_core_worker()
    namespace = namespace or _namespace()
    reply = cw.call(
        cw.control_store, lambda rid, reply_to: p.GetNamedActor(rid, reply_to, name, namespace)
    )
    assert isinstance(reply, p.NamedActorReply)
    if reply.spec is None:
        raise ValueError(f"Failed to look up actor with name {name!r} in namespace {namespace!r}.")
    spec = reply.spec
    return ActorHandle(
        spec.actor_id,
        spec.owner_address,
        spec.class_name,
        spec.method_meta,
        spec.max_task_retries,
        spec.max_pending_calls,
    )

"""Starting a local cluster or connecting to one: what ``init`` does before the API works."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from nebula import _auth, _config, _runtime_env
from nebula import _protocol as p
from nebula._api import services
from nebula._worker.core_worker import CoreWorker, print_log_lines

# Set by the job manager in the environment of a submitted job's entrypoint: its id, and
# the runtime_env it was submitted with (JSON), which its tasks inherit.
SUBMISSION_ID_ENV = "NEBULA_JOB_SUBMISSION_ID"
JOB_RUNTIME_ENV_ENV = "NEBULA_JOB_RUNTIME_ENV"


def submitted_job_env() -> dict[str, Any] | None:
    text = os.environ.get(JOB_RUNTIME_ENV_ENV)
    if not text:
        return None
    import json

    return _runtime_env.validate(json.loads(text))


@dataclass
class Runtime:
    core_worker: CoreWorker
    is_driver: bool
    namespace: str
    local_cluster: services.LocalCluster | None = None
    address: str = ""
    session_dir: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def start_local_cluster(
    num_cpus: float | None,
    num_gpus: float | None,
    resources: dict[str, float] | None,
    object_store_memory: int | None,
    namespace: str,
    log_to_driver: bool,
    dashboard: tuple[str, int] | None = None,
) -> Runtime:
    """Start a control store and a head node manager as this process's children, and, with
    ``dashboard`` (host, port), a dashboard that comes up in the background."""
    session_dir, tag = services.new_session()
    token = _auth.new_token()
    processes: list[Any] = []
    # Both processes start at once: the node manager is told the control store's port up
    # front, and its first message waits in its socket until the control store listens.
    port = services.free_port("127.0.0.1")
    started: dict[str, Any] = {}

    def start_store() -> None:
        try:
            started["store"] = services.start_control_store(
                session_dir, host="127.0.0.1", port=port, detached=False, token=token
            )
        except BaseException as exc:
            started["error"] = exc
        else:
            # The node manager takes longer to start: use the wait to load the plugins,
            # which shutdown() calls, rather than making shutdown() load them.
            threading.Thread(target=_load_plugins, name="nebula-plugins", daemon=True).start()

    store_thread = threading.Thread(target=start_store, name="nebula-start-store")
    store_thread.start()
    try:
        nm_process, nm_address, node_id = services.start_node_manager(
            session_dir,
            control_store=f"tcp://127.0.0.1:{port}",
            host="127.0.0.1",
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            resources=resources,
            object_store_memory=object_store_memory,
            detached=False,
            token=token,
            head=True,
        )
        processes.append(nm_process)
    finally:
        store_thread.join()
        if "store" in started:
            processes.insert(0, started["store"][0])
    if "error" in started or len(processes) < 2:
        services.stop_processes(processes)
        raise started.get("error") or RuntimeError("the local cluster did not start")
    cs_address = started["store"][1]
    cluster = services.LocalCluster(session_dir, tag, cs_address, nm_address, node_id, processes)
    try:
        state = _make_driver(
            cs_address, nm_address, node_id, tag, namespace, log_to_driver, token=token
        )
    except BaseException:
        services.stop_processes(processes)
        raise
    state.local_cluster = cluster
    state.core_worker.health_check = functools.partial(_local_cluster_health, cluster)
    state.session_dir = session_dir
    state.address = cs_address.removeprefix("tcp://")
    if dashboard is not None:
        from nebula._dashboard import launch

        host, wanted = dashboard
        chosen = launch.choose_port(host, wanted)
        # Last in the list: the health check looks at the first two processes only.
        processes.append(
            launch.start_in_background(
                host=host,
                port=chosen,
                cluster_address=state.address,
                session_dir=session_dir,
                token=token,
            )
        )
        state.extra["dashboard_url"] = launch.url_of(host, chosen)
    return state


def _load_plugins() -> None:
    from nebula._plugins.manager import get_plugin_manager

    # A plugin that fails to load fails again in shutdown(), which reports it.
    with contextlib.suppress(Exception):
        get_plugin_manager()


def _local_cluster_health(cluster: services.LocalCluster) -> str | None:
    for process, role in zip(cluster.processes, ("control store", "node manager")):
        code = process.poll()
        if code is not None:
            return (
                f"The local cluster's {role} (pid {process.pid}) exited unexpectedly with code "
                f"{code}; call nebula.shutdown() and nebula.init() to start a new cluster."
            )
    return None


def connect_to_cluster(
    address: str, namespace: str, log_to_driver: bool, token: str | None
) -> Runtime:
    if address == "auto":
        info = services.read_address_file()
        if info is None:
            raise ConnectionError(
                "No running Nebula cluster was found on this machine; start one with "
                "`nebula start --head` or call nebula.init() without an address."
            )
        address = str(info["address"])
    host_port = address.removeprefix("tcp://").removeprefix("nebula://")
    if ":" not in host_port:
        raise ValueError(f"address must look like HOST:PORT, got {address!r}.")
    cs_address = f"tcp://{host_port}"
    my_ip = services.local_ip_towards(host_port.rsplit(":", 1)[0])
    token = token or _auth.token_from_environment(_config.TEMP_DIR, cs_address)
    if token is None:
        raise ConnectionError(
            f"No cluster token for {address}: set {_auth.TOKEN_ENV} to the token that "
            "`nebula start --head` printed (on the head machine it is read from its file)."
        )
    reply = _probe_cluster(cs_address, my_ip, address, token)
    alive = [n for n in reply.nodes if n.alive]
    if not alive:
        raise ConnectionError(f"The cluster at {address} has no live node yet.")
    # The node on this machine holds our objects; without one, objects stay in-process.
    local = next((n for n in alive if n.ip == my_ip), None)
    node = local or alive[0]
    tag = services.session_tag_of(reply.session_dir)
    state = _make_driver(
        cs_address,
        node.address,
        node.node_id if local is not None else b"",
        tag,
        namespace,
        log_to_driver,
        host=my_ip,
        log_sources=[n.address for n in alive],
        token=token,
    )
    state.address = host_port
    state.session_dir = reply.session_dir
    return state


def _probe_cluster(cs_address: str, my_ip: str, address: str, token: str) -> p.ClusterInfoReply:
    try:
        return services.probe_cluster(cs_address, host=my_ip, token=token)
    except TimeoutError:
        raise ConnectionError(
            f"Could not reach a Nebula cluster at {address}: no answer within 5 s (is it "
            f"running, and is {_auth.TOKEN_ENV} the token it printed at start?)."
        ) from None


def _make_driver(
    cs_address: str,
    nm_address: str,
    node_id: bytes,
    tag: str,
    namespace: str,
    log_to_driver: bool,
    *,
    host: str = "127.0.0.1",
    log_sources: list[str] | None = None,
    token: str,
) -> Runtime:
    cw = CoreWorker(
        token=token,
        is_driver=True,
        host=host,
        control_store=cs_address,
        node_manager=nm_address,
        node_id=node_id,
        session_tag=tag,
        namespace=namespace,
    )
    try:
        reply = cw.call(
            cs_address,
            lambda rid, reply_to: p.RegisterJob(
                rid,
                reply_to,
                os.getpid(),
                namespace,
                host,
                " ".join([os.path.basename(sys.executable), *sys.argv]),
                os.environ.get(SUBMISSION_ID_ENV, ""),
            ),
        )
    except BaseException:
        cw.shutdown()
        raise
    assert isinstance(reply, p.JobRegistered)
    cw.job_id = reply.job_id
    if not any(n.node_id == node_id and n.alive for n in reply.nodes):
        _wait_until_node_known(cw, node_id)
    cw.job_sys_path = tuple(path for path in [os.getcwd(), *sys.path] if path)
    if log_to_driver:
        cw.log_sink = print_log_lines
    for address in log_sources or [nm_address]:
        cw.send(address, p.RegisterDriver(cw.job_id, cw.address, log_to_driver))
    return Runtime(cw, is_driver=True, namespace=namespace)


def _wait_until_node_known(cw: CoreWorker, node_id: bytes, timeout_s: float = 10.0) -> None:
    """A node that just started may not have reached the control store yet: wait for it, so
    that nodes() and cluster_resources() right after init() see it."""
    if not node_id:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reply = cw.call(cw.control_store, lambda rid, to: p.GetClusterInfo(rid, to))
        assert isinstance(reply, p.ClusterInfoReply)
        if any(n.node_id == node_id and n.alive for n in reply.nodes):
            return
        time.sleep(0.01)

"""``Cluster``: a head and several nodes as real processes on this machine, for tests.

Each node is its own node manager process with its own resources, workers and store;
``remove_node`` kills a node's processes the way a machine loss would.
"""

from __future__ import annotations

import contextlib
import glob
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from nebula import _auth, _config
from nebula import _protocol as p
from nebula._api import services
from nebula._object_store import shm


@dataclass
class ClusterNode:
    """One node of a test cluster."""

    node_id: str
    address: str
    process: subprocess.Popen[bytes]
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class Cluster:
    """A local multi-node cluster of real processes.

    ``Cluster(initialize_head=True, head_node_args={"num_cpus": 2}, connect=True)`` gives a
    running head node with a connected driver; ``add_node`` and ``remove_node`` grow and
    shrink it; ``shutdown`` stops everything it started. ``include_dashboard=True`` also
    serves the dashboard and job API (``dashboard_url``), on ``dashboard_host``.
    """

    def __init__(
        self,
        *,
        initialize_head: bool = False,
        head_node_args: dict[str, Any] | None = None,
        connect: bool = False,
        node_timeout_s: float = 3.0,
        host: str = "127.0.0.1",
        include_dashboard: bool = False,
        dashboard_host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.session_dir, self.session_tag = services.new_session()
        self.token = _auth.new_token()
        # Nodes are declared dead quickly so tests about node loss stay short.
        self._env = {
            "NEBULA_NODE_TIMEOUT_S": str(node_timeout_s),
            "NEBULA_NODE_HEARTBEAT_S": str(min(1.0, node_timeout_s / 4)),
        }
        self._control_store, cs_address = services.start_control_store(
            self.session_dir, host=host, port=0, detached=False, env=self._env, token=self.token
        )
        self.control_store_address = cs_address
        self.dashboard_url: str | None = None
        self._dashboard: subprocess.Popen[bytes] | None = None
        if include_dashboard:
            self._start_dashboard(dashboard_host)
        self.nodes: list[ClusterNode] = []
        self._removed: set[str] = set()
        self._connected = False
        self.head_node: ClusterNode | None = None
        if initialize_head:
            self.head_node = self.add_node(**(head_node_args or {}))
        if connect:
            self.connect()

    def _start_dashboard(self, host: str) -> None:
        import os

        from nebula._dashboard import launch

        command = launch.command(
            host=host,
            port=launch.choose_port(host, 0),
            cluster_address=self.address,
            session_dir=self.session_dir,
            parent_pid=os.getpid(),
        )
        self._dashboard, self.dashboard_url = services.launch_process(
            command[2:],
            detached=False,
            log_path=os.path.join(self.session_dir, "logs", "dashboard.err"),
            env={**self._env, _auth.TOKEN_ENV: self.token},
        )

    @property
    def address(self) -> str:
        return self.control_store_address.removeprefix("tcp://")

    def add_node(
        self,
        *,
        num_cpus: float = 1,
        num_gpus: float = 0,
        resources: dict[str, float] | None = None,
        object_store_memory: int | None = None,
        wait: bool = True,
        host: str | None = None,
    ) -> ClusterNode:
        """Start a node manager; ``host`` gives it an address of its own (another loopback
        address such as 127.0.0.2 makes it look like a second machine), else the cluster's."""
        process, address, node_id = services.start_node_manager(
            self.session_dir,
            control_store=self.control_store_address,
            host=host or self.host,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            resources=resources,
            object_store_memory=object_store_memory,
            detached=False,
            env=self._env,
            token=self.token,
            head=not self.nodes,
        )
        total = {"CPU": float(num_cpus), "GPU": float(num_gpus), **(resources or {})}
        node = ClusterNode(node_id.hex(), address, process, total)
        self.nodes.append(node)
        if wait:
            self.wait_for_nodes()
        return node

    def restart_control_store(self) -> None:
        """Kill the head's control store and start a new one on the same address.

        The new one reloads the tables the old one persisted: nodes, jobs, actors (named and
        detached ones are found again), placement groups.
        """
        self._control_store.kill()
        self._control_store.wait(5)
        if self._control_store.stdout is not None:
            self._control_store.stdout.close()
        port = int(self.address.rsplit(":", 1)[1])
        self._control_store, address = services.start_control_store(
            self.session_dir,
            host=self.host,
            port=port,
            detached=False,
            env=self._env,
            token=self.token,
        )
        assert address == self.control_store_address

    def remove_node(self, node: ClusterNode) -> None:
        """Kill the node's manager and workers at once, as losing the machine would."""
        with contextlib.suppress(psutil.NoSuchProcess):
            procs = [psutil.Process(node.process.pid)]
            procs += procs[0].children(recursive=True)
            for proc in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
            psutil.wait_procs(procs, timeout=5)
        node.process.wait(5)
        if node.process.stdout is not None:
            node.process.stdout.close()
        # The machine's memory is gone with it, shared-memory objects included.
        for path in glob.glob(shm.node_glob(self.session_tag, bytes.fromhex(node.node_id))):
            shm.delete_object(path)
        self._removed.add(node.node_id)

    def wait_for_nodes(self, timeout: float = 30.0) -> None:
        """Wait until the control store sees exactly the nodes added and not removed."""
        wanted = {n.node_id for n in self.nodes if n.node_id not in self._removed}
        deadline = time.monotonic() + timeout
        while True:
            alive = {node.node_id.hex() for node in self._cluster_info().nodes if node.alive}
            if alive == wanted:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the cluster has nodes {sorted(alive)} alive, expected {sorted(wanted)}"
                )
            time.sleep(0.05)

    def _cluster_info(self) -> p.ClusterInfoReply:
        return services.probe_cluster(
            self.control_store_address, host=self.host, token=self.token, timeout_s=10.0
        )

    def connect(self, **init_kwargs: Any) -> None:
        import nebula

        nebula.init(address=self.address, _cluster_token=self.token, **init_kwargs)
        self._connected = True

    def shutdown(self) -> None:
        import nebula

        if self._connected:
            nebula.shutdown()
            self._connected = False
        live = [n.process for n in self.nodes if n.alive]
        dashboard = [self._dashboard] if self._dashboard is not None else []
        services.stop_processes([self._control_store, *live, *dashboard])
        _auth.remove_token_file(_config.TEMP_DIR, self.control_store_address)
        for node in self.nodes:
            if node.process.stdout is not None and not node.process.stdout.closed:
                node.process.stdout.close()
        shm.delete_session_objects(self.session_tag)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

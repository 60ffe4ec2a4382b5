"""Looking at the cluster: ``nodes()``, resources, and the runtime context."""

from __future__ import annotations

from typing import Any

from nebula import _protocol as p
from nebula._api import runtime


def _cluster_info() -> p.ClusterInfoReply:
    cw = runtime.require_core_worker()
    reply = cw.call(cw.control_store, lambda rid, reply_to: p.GetClusterInfo(rid, reply_to))
    assert isinstance(reply, p.ClusterInfoReply)
    return reply


def nodes() -> list[dict[str, Any]]:
    """Every node the cluster has known, alive or dead."""
    info = _cluster_info()
    return [
        {
            "NodeID": node.node_id.hex(),
            "Alive": node.alive,
            "alive": node.alive,
            "NodeManagerAddress": node.ip,
            "NodeManagerHostname": node.ip,
            "NodeManagerPort": int(node.address.rsplit(":", 1)[-1]),
            "Resources": dict(node.resources),
            "Labels": dict(node.labels),
        }
        for node in info.nodes
    ]


def cluster_resources() -> dict[str, float]:
    """Total resources of the live nodes, with their object stores' capacity (as Ray does)."""
    total: dict[str, float] = {}
    for node in _cluster_info().nodes:
        if node.alive:
            for name, amount in node.resources.items():
                total[name] = total.get(name, 0.0) + amount
            if node.object_store_memory:
                total["object_store_memory"] = (
                    total.get("object_store_memory", 0.0) + node.object_store_memory
                )
    return total


def available_resources() -> dict[str, float]:
    """Resources not currently leased, and free object store bytes, asked of each live node
    manager now."""
    cw = runtime.require_core_worker()
    available: dict[str, float] = {}
    for node in _cluster_info().nodes:
        if not node.alive:
            continue
        try:
            reply = cw.call(
                node.address,
                lambda rid, reply_to: p.NodeResourcesRequest(rid, reply_to),
                timeout_s=5.0,
            )
        except TimeoutError:
            continue
        assert isinstance(reply, p.NodeResourcesReply)
        for name, amount in reply.available.items():
            if amount > 1e-9:
                available[name] = available.get(name, 0.0) + amount
        if reply.object_store_available:
            free = available.get("object_store_memory", 0.0) + reply.object_store_available
            available["object_store_memory"] = free
    return available


class RuntimeContext:
    """Where the calling code runs: job, node, task, actor."""

    def get_job_id(self) -> str:
        return f"{runtime.require_core_worker().job_id:08x}"

    @property
    def job_id(self) -> str:
        return self.get_job_id()

    def get_node_id(self) -> str:
        return runtime.require_core_worker().node_id.hex()

    @property
    def node_id(self) -> str:
        return self.get_node_id()

    def get_worker_id(self) -> str:
        cw = runtime.require_core_worker()
        return (cw.worker_id or b"driver").hex()

    def get_task_id(self) -> str | None:
        from nebula._worker.executor import current_task

        spec = current_task()
        return spec.task_id.hex() if spec is not None else None

    def get_actor_id(self) -> str | None:
        from nebula._worker.executor import current_task

        spec = current_task()
        if spec is None:
            return None
        if spec.actor_id is not None:
            return spec.actor_id.hex()
        return None

    def get_placement_group_id(self) -> str | None:
        """The hex id of the placement group the caller runs in (None outside any)."""
        from nebula._api.placement_context import current

        context = current()
        return context.pg_id.hex() if context is not None else None

    @property
    def should_capture_child_tasks_in_placement_group(self) -> bool:
        """Whether tasks and actors started here without a strategy go to the caller's group."""
        from nebula._api.placement_context import current

        context = current()
        return context is not None and context.capture_child_tasks

    @property
    def current_actor(self) -> Any:
        """A handle to the actor whose method is running (to pass it to other tasks)."""
        from nebula._api.actor import ActorHandle, method_meta
        from nebula._worker.executor import current_executor

        executor = current_executor()
        args = executor.actor_handle_args if executor is not None else None
        if args is None or self.get_actor_id() is None:
            raise RuntimeError("current_actor can only be read inside an actor's method.")
        actor_id, owner, class_name, cls = args
        return ActorHandle(actor_id, owner, class_name, method_meta(cls))

    @property
    def namespace(self) -> str:
        return runtime._namespace()

    def get(self) -> dict[str, Any]:
        return {
            "job_id": self.get_job_id(),
            "node_id": self.get_node_id(),
            "namespace": self.namespace,
            "task_id": self.get_task_id(),
            "actor_id": self.get_actor_id(),
        }

    @property
    def dashboard_url(self) -> str | None:
        """The dashboard's address (``http://HOST:PORT``), None when the cluster has none."""
        return runtime.dashboard_url()

    @property
    def was_current_actor_reconstructed(self) -> bool:
        return False


def get_runtime_context() -> RuntimeContext:
    runtime.require_core_worker()
    return RuntimeContext()


def get_gpu_ids() -> list[int]:
    """The GPU ids assigned to the calling task or actor (empty in the driver)."""
    from nebula._worker.executor import gpu_ids

    return gpu_ids()

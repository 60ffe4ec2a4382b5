"""Nebula's own resources and scheduling policies, provided the same way any plugin would."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from typing import Any

from nebula._plugins.registries import (
    CommandRegistry,
    PlacementGroupStrategyRegistry,
    ResourceRegistry,
    SchedulingPolicyRegistry,
)
from nebula._scheduler.bundles import (
    PackStrategy,
    SpreadStrategy,
    StrictPackStrategy,
    StrictSpreadStrategy,
)
from nebula._scheduler.policies import DefaultPolicy, NodeAffinityPolicy, SpreadPolicy
from nebula.hookspecs import hookimpl

_logger = logging.getLogger(__name__)

NVIDIA_SMI_TIMEOUT_S = 5.0
MEMORY_FRACTION = 0.7
"""Share of currently available RAM offered to tasks; the rest is headroom for the OS and
for Nebula's own processes, so that over-subscribed tasks hit a scheduling wait, not OOM."""


def detect_cpus() -> float:
    """CPUs this process may run on, which is fewer than the machine's inside a cpuset."""
    if hasattr(os, "sched_getaffinity"):  # Linux only
        return float(len(os.sched_getaffinity(0)))
    import psutil  # deferred: keeps ``import nebula.hookspecs`` free of compiled modules

    return float(psutil.cpu_count() or os.cpu_count() or 1)


def detect_gpus() -> float:
    """GPUs CUDA would show this process: ``CUDA_VISIBLE_DEVICES`` if set, else nvidia-smi."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return float(_count_visible_devices(visible))
    return float(_count_nvidia_smi_gpus())


def _count_visible_devices(visible: str) -> int:
    # CUDA stops at the first invalid entry, and "-1" is the usual way to hide every device.
    count = 0
    for entry in visible.split(","):
        entry = entry.strip()
        if not entry or entry.startswith("-"):
            break
        count += 1
    return count


def _count_nvidia_smi_gpus() -> int:
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return 0
    try:
        listing = subprocess.run(
            [executable, "-L"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        _logger.warning("assuming no GPUs: %s -L failed: %s", executable, exc)
        return 0
    # MIG instances are listed indented under their GPU; only whole GPUs count here.
    return sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU "))


def detect_memory() -> float:
    """Bytes of RAM tasks may reserve, in whole bytes."""
    import psutil  # deferred: keeps ``import nebula.hookspecs`` free of compiled modules

    return float(int(psutil.virtual_memory().available * MEMORY_FRACTION))


@hookimpl
def nebula_register_resources(registry: ResourceRegistry) -> None:
    registry.add("CPU", detect_cpus, description="logical CPUs this node may use")
    registry.add("GPU", detect_gpus, description="NVIDIA GPUs visible to this node")
    registry.add("memory", detect_memory, description="bytes of RAM tasks may reserve")


@hookimpl
def nebula_register_scheduling_policies(registry: SchedulingPolicyRegistry) -> None:
    registry.add(
        "DEFAULT",
        DefaultPolicy(),
        description="run locally while it fits, else on the node with the most free CPU",
    )
    registry.add(
        "SPREAD",
        SpreadPolicy(),
        description="run on the least-loaded node, rotating among equally loaded ones",
    )
    registry.add(
        "PLACEMENT_GROUP",
        DefaultPolicy(),
        description="run inside a placement group's bundle (its resources are renamed)",
    )
    registry.add(
        "NODE_AFFINITY",
        NodeAffinityPolicy(),
        description="run on a chosen node (NodeAffinitySchedulingStrategy)",
    )


@hookimpl
def nebula_register_placement_group_strategies(registry: PlacementGroupStrategyRegistry) -> None:
    registry.add("PACK", PackStrategy(), description="as few nodes as fit, one if possible")
    registry.add("SPREAD", SpreadStrategy(), description="different nodes where possible")
    registry.add("STRICT_PACK", StrictPackStrategy(), description="all bundles on one node")
    registry.add(
        "STRICT_SPREAD", StrictSpreadStrategy(), description="every bundle on its own node"
    )


@hookimpl
def nebula_register_cli(commands: CommandRegistry) -> None:
    # Imported here: the CLI's modules load only in the ``nebula`` executable.
    from nebula import _cli_microbenchmark
    from nebula._cli import cluster, jobs, state

    def add(name: str, help: str, module: Any, function: str) -> None:
        commands.add(
            name,
            help=help,
            configure=getattr(module, f"configure_{function}"),
            run=getattr(module, f"run_{function}"),
        )

    add("start", "start the head node, or join a node to a cluster", cluster, "start")
    add(
        "stop",
        "stop the clusters started with `nebula start` on this machine (--all: every Nebula "
        "process of this user)",
        cluster,
        "stop",
    )
    add("status", "show the cluster's nodes and resources", cluster, "status")
    add(
        "get-auth-token",
        "print the cluster token (the dashboard's bearer token)",
        cluster,
        "get_auth_token",
    )
    add(
        "list",
        "list the cluster's tasks, actors, objects, jobs, workers, nodes or placement groups",
        state,
        "list",
    )
    add("summary", "count tasks, actors or objects by function, class or state", state, "summary")
    add("memory", "objects in the cluster: size, owner, reference type, spilled", state, "memory")
    add("timeline", "write the tasks that ran as a Chrome trace (Perfetto)", state, "timeline")
    add("logs", "list log files, or print a worker's, actor's, task's or job's log", state, "logs")
    add("stack", "print the Python stacks of this machine's workers", state, "stack")
    add("job", "submit a job to a cluster and follow it (status, logs, stop, list)", jobs, "job")
    commands.add(
        "microbenchmark",
        help=_cli_microbenchmark.HELP,
        configure=_cli_microbenchmark.configure,
        run=_cli_microbenchmark.run,
    )

"""Hook specifications: every way a plugin can extend Nebula, in one place.

A plugin is a module (or object) whose functions are decorated with
:data:`nebula.plugins.hookimpl` and named after a hook below (or after a hook that an
installed package declares through :func:`nebula_add_hookspecs`). Installed packages
announce theirs through the ``nebula.plugins`` entry-point group::

    [project.entry-points."nebula.plugins"]
    myplugin = "mypackage._plugin"

Nebula's own resources and policies come from a plugin of the same kind, so a plugin can do
anything the core does. An implementation may accept fewer parameters than its spec, which
lets specs gain parameters without breaking existing plugins. A misspelled hook name is an
error when plugins are loaded, unless it is marked ``@hookimpl(optionalhook=True)``.

Importing this module is cheap (pluggy and the standard library only). Plugin authors import
what they need from :mod:`nebula.plugins`, the public face of the plugin seam; this module
holds only the specifications.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from nebula._plugins.lifecycle import JobInfo, NodeInfo, WorkerInfo
    from nebula._plugins.registries import (
        CommandRegistry,
        PlacementGroupStrategyRegistry,
        ResourceRegistry,
        SchedulingPolicyRegistry,
    )

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "nebula_add_hookspecs",
    "nebula_job_finished",
    "nebula_node_started",
    "nebula_register_cli",
    "nebula_register_placement_group_strategies",
    "nebula_register_resources",
    "nebula_register_scheduling_policies",
    "nebula_worker_started",
]

PROJECT_NAME = "nebula"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a hook specification: the ones below, and those of a domain package's hookspecs."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin function as the implementation of the hook it is named after."""


# -------------------------------------------------------------------------------------------
# Extending the specification itself.
# -------------------------------------------------------------------------------------------


@hookspec(historic=True)
def nebula_add_hookspecs(pluginmanager: pluggy.PluginManager) -> None:
    """Declare the hooks a domain package offers to its own plugins.

    :param pluginmanager: call ``pluginmanager.add_hookspecs(module)`` with a module of
        functions marked :data:`nebula.plugins.hookspec` (``nebula.data.hookspecs`` is one).

    Historic, as pytest's ``pytest_addhooks``: called for every plugin as it is registered,
    including plugins loaded after the first call, and before unknown hook names are
    reported, so a package may implement the hooks it declares in the same plugin module.
    Not first-result: every implementation runs. Added in Nebula 0.2.
    """


# -------------------------------------------------------------------------------------------
# Registration hooks. Each is called once per process, the first time Nebula needs that
# registry, once for each plugin in load order (built-in first). Adding a name another
# plugin already added raises ValueError naming both plugins.
# -------------------------------------------------------------------------------------------


@hookspec
def nebula_register_resources(registry: ResourceRegistry) -> None:
    """Declare resource kinds and how a node measures them.

    :param registry: call ``registry.add(name, detect, description=...)``. ``detect`` takes
        no arguments and returns the amount this node has, or None if it cannot tell (the
        resource is then skipped, as it is when ``detect`` raises). Without ``detect`` the
        resource exists only when a user passes it to ``nebula.init(resources=...)``.

    Called in each node's process before the node joins the cluster; the built-in plugin
    adds ``CPU``, ``GPU`` and ``memory`` (bytes). Not first-result: every implementation
    runs. Added in Nebula 0.1.
    """


@hookspec
def nebula_register_scheduling_policies(registry: SchedulingPolicyRegistry) -> None:
    """Add named placement policies that users select with ``scheduling_strategy="NAME"``.

    :param registry: call ``registry.add(name, policy, description=...)`` where ``policy``
        implements :class:`nebula.plugins.SchedulingPolicy`: ``select_node(request, nodes)``
        gets a :class:`~nebula.plugins.PlacementRequest` (resources, the user's strategy
        object, the submitting node) and frozen :class:`~nebula.plugins.NodeView` s. A
        policy object may keep state between calls; the scheduler calls it from one thread.
        A strategy object selects its policy by its ``policy_name`` attribute.

    Called in every process that schedules work, before the first placement; the built-in
    plugin adds ``"DEFAULT"``, ``"SPREAD"``, ``"NODE_AFFINITY"`` and ``"PLACEMENT_GROUP"``.
    Not first-result: every implementation runs. Added in Nebula 0.1; policies receive
    the strategy object since 0.2.
    """


@hookspec
def nebula_register_placement_group_strategies(
    registry: PlacementGroupStrategyRegistry,
) -> None:
    """Add strategies that choose nodes for a placement group's bundles.

    :param registry: call ``registry.add(name, strategy, description=...)`` where
        ``strategy`` implements :class:`nebula.plugins.PlacementGroupStrategy`:
        ``select_nodes(bundles, nodes)`` returns a node id per bundle, or None to wait.

    Called in the control store before it places the first group, and in drivers to check
    ``placement_group(strategy=...)``; the built-in plugin adds ``"PACK"``, ``"SPREAD"``,
    ``"STRICT_PACK"`` and ``"STRICT_SPREAD"``. Not first-result: every implementation
    runs. Added in Nebula 0.2.
    """


@hookspec
def nebula_register_cli(commands: CommandRegistry) -> None:
    """Add subcommands to the ``nebula`` command line (for example ``nebula serve``).

    :param commands: call ``commands.add(name, help=..., configure=..., run=...)``;
        ``configure`` adds arguments to the subcommand's ``argparse`` parser and ``run``
        receives the parsed namespace and returns the exit status (None means 0).

    Called once when the ``nebula`` executable starts, before arguments are parsed. Not
    first-result: every implementation runs. Added in Nebula 0.1.
    """


# -------------------------------------------------------------------------------------------
# Lifecycle hooks. Called synchronously in the process named, so keep them quick; an
# exception raised by an implementation propagates to the runtime code that fired the hook.
# -------------------------------------------------------------------------------------------


@hookspec
def nebula_node_started(node: NodeInfo) -> None:
    """React to a node joining the cluster.

    :param node: the node's id, the address other nodes reach it at, and its total
        resources.

    Called in that node's own process once it has registered with the cluster and before it
    accepts work. Not first-result: every implementation runs. Added in Nebula 0.1.
    """


@hookspec
def nebula_worker_started(worker: WorkerInfo) -> None:
    """Prepare a worker process, for example to set up logging or tracing in it.

    :param worker: the worker's id, process id and the node it runs on.

    Called inside the new worker process after it has connected to its node and before it
    runs its first task or actor. Not first-result: every implementation runs. Added in
    Nebula 0.1.
    """


@hookspec
def nebula_worker_imports() -> list[str]:
    """Name modules that a plugin's workers import anyway, so that each node imports them once.

    A node manager forks its workers from a *zygote*, a process that has already imported
    Nebula. It also imports the modules named here, one at a time while it has no worker
    to start, so that the workers it starts afterwards find them loaded, their memory
    shared with the zygote's, instead of spending a fraction of a second on them in their
    first task; workers it started before and never used are then replaced. A module that
    fails to import is logged and skipped.

    Called once per node, in the zygote; an implementation may set environment variables
    that those modules read when imported. Name only modules whose import starts no
    process and keeps no file or socket open: they are imported in a process that forks.
    Not first-result: the lists are joined. Added in Nebula 0.2.
    """
    return []


@hookspec
def nebula_job_finished(job: JobInfo) -> None:
    """Clean up after a job, for example to flush metrics it produced.

    :param job: the job's id, its driver's process id and its namespace.

    Called in the driver process when the job ends, from ``nebula.shutdown()`` or at
    interpreter exit, after its tasks have stopped. Not first-result: every implementation
    runs. Added in Nebula 0.1.
    """

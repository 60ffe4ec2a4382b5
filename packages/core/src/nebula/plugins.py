"""The plugin API: everything a package needs to extend Nebula, core's own libraries included.

A plugin is a module whose functions carry the :data:`hookimpl` marker and are named after
a hook; it is announced in the ``nebula.plugins`` entry-point group of its distribution::

    [project.entry-points."nebula.plugins"]
    myplugin = "mypackage._plugin"

Core's hooks are specified in :mod:`nebula.hookspecs`. A domain package that offers hooks
of its own keeps them in its own hookspecs module, marked with :data:`hookspec`, adds them
from :func:`~nebula.hookspecs.nebula_add_hookspecs`, and builds each registry with
:func:`get_registry`::

    # mypackage/hookspecs.py
    from nebula.plugins import Registry, hookspec

    class ModelRegistry(Registry[type]):
        kind = "model"

    @hookspec
    def nebula_register_models(registry: ModelRegistry) -> None:
        "Add model classes by name."

    # mypackage/_plugin.py
    from nebula.plugins import hookimpl

    @hookimpl
    def nebula_add_hookspecs(pluginmanager):
        from mypackage import hookspecs
        pluginmanager.add_hookspecs(hookspecs)

    # anywhere in mypackage, when the models are first needed
    models = get_registry("nebula_register_models", ModelRegistry)

Registries reject a name taken twice, naming both plugins. Plugins receive plain frozen
records (:class:`NodeView`, :class:`NodeInfo`, :class:`WorkerInfo`, :class:`JobInfo`),
never runtime internals. Importing this module adds only pluggy to what ``import nebula``
loads.
"""

from __future__ import annotations

from nebula._plugins.lifecycle import JobInfo, NodeInfo, WorkerInfo
from nebula._plugins.manager import (
    ENTRY_POINT_GROUP,
    PluginLoadError,
    command_registry,
    get_plugin_manager,
    get_registry,
    placement_group_strategy_registry,
    reset_plugin_manager,
    resource_registry,
    scheduling_policy_registry,
)
from nebula._plugins.registries import (
    Command,
    CommandRegistry,
    Detector,
    PlacementGroupStrategyRegistry,
    Registration,
    Registry,
    RegistryLookupError,
    ResourceRegistry,
    SchedulingPolicyRegistry,
)
from nebula._scheduler.resources import fits
from nebula._scheduler.view import (
    NodeView,
    PlacementGroupStrategy,
    PlacementRequest,
    SchedulingPolicy,
    Strategy,
    feasible_nodes,
    ready_nodes,
)
from nebula.hookspecs import hookimpl, hookspec

__all__ = [
    "ENTRY_POINT_GROUP",
    "Command",
    "CommandRegistry",
    "Detector",
    "JobInfo",
    "NodeInfo",
    "NodeView",
    "PlacementGroupStrategy",
    "PlacementGroupStrategyRegistry",
    "PlacementRequest",
    "PluginLoadError",
    "Registration",
    "Registry",
    "RegistryLookupError",
    "ResourceRegistry",
    "SchedulingPolicy",
    "SchedulingPolicyRegistry",
    "Strategy",
    "WorkerInfo",
    "command_registry",
    "feasible_nodes",
    "fits",
    "get_plugin_manager",
    "get_registry",
    "hookimpl",
    "hookspec",
    "placement_group_strategy_registry",
    "ready_nodes",
    "reset_plugin_manager",
    "resource_registry",
    "scheduling_policy_registry",
]

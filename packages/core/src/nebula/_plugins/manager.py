"""The process-wide plugin manager and the registries built from it.

Everything is built lazily on first use and cached, so importing Nebula never imports
third-party plugins; :func:`reset_plugin_manager` drops the cache (tests, and code that
installs a plugin at run time).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import pluggy

from nebula import hookspecs
from nebula._plugins import builtin
from nebula._plugins.registries import (
    CommandRegistry,
    PlacementGroupStrategyRegistry,
    Registry,
    ResourceRegistry,
    SchedulingPolicyRegistry,
)
from nebula.exceptions import NebulaError

__all__ = [
    "BUILTIN_PLUGIN_NAME",
    "ENTRY_POINT_GROUP",
    "PluginLoadError",
    "command_registry",
    "get_plugin_manager",
    "get_registry",
    "placement_group_strategy_registry",
    "reset_plugin_manager",
    "resource_registry",
    "scheduling_policy_registry",
]

ENTRY_POINT_GROUP = "nebula.plugins"
BUILTIN_PLUGIN_NAME = "nebula.builtin"

R = TypeVar("R", bound=Registry[Any])


class PluginLoadError(NebulaError):
    """An installed plugin could not be imported or registered."""


@dataclass
class _Plugins:
    manager: pluggy.PluginManager
    registries: dict[str, Registry[Any]] = field(default_factory=dict)


_lock = threading.RLock()
_plugins: _Plugins | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The manager holding the built-in plugin and every installed ``nebula.plugins`` one."""
    return _current().manager


def reset_plugin_manager() -> None:
    """Forget the manager and its registries; the next access loads plugins afresh."""
    global _plugins
    with _lock:
        _plugins = None


def resource_registry() -> ResourceRegistry:
    """Resource kinds and their detectors (``nebula_register_resources``)."""
    return get_registry("nebula_register_resources", ResourceRegistry)


def scheduling_policy_registry() -> SchedulingPolicyRegistry:
    """Placement policies by name (``nebula_register_scheduling_policies``)."""
    return get_registry("nebula_register_scheduling_policies", SchedulingPolicyRegistry)


def placement_group_strategy_registry() -> PlacementGroupStrategyRegistry:
    """Placement-group strategies by name (``nebula_register_placement_group_strategies``)."""
    return get_registry(
        "nebula_register_placement_group_strategies", PlacementGroupStrategyRegistry
    )


def command_registry() -> CommandRegistry:
    """Subcommands of the ``nebula`` executable, core's own included (``nebula_register_cli``)."""
    return get_registry("nebula_register_cli", CommandRegistry, argument="commands")


def _current() -> _Plugins:
    global _plugins
    with _lock:
        if _plugins is None:
            _plugins = _Plugins(_build_manager())
        return _plugins


def _build_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    # Historic: a plugin registered later still gets the call, so a domain package adds its
    # own specs as it is loaded, before ``check_pending`` judges its other hooks.
    manager.hook.nebula_add_hookspecs.call_historic(kwargs={"pluginmanager": manager})
    manager.register(builtin, name=BUILTIN_PLUGIN_NAME)
    _load_entry_points(manager)
    _check_pending(manager)
    return manager


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    """Load installed plugins one entry point at a time, so a failure can say which one."""
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=entry_point.name)
        except Exception as exc:
            raise PluginLoadError(
                f"the Nebula plugin entry point {entry_point.name!r} "
                f"({entry_point.value}, group {ENTRY_POINT_GROUP!r}) failed to load with "
                f"{type(exc).__name__}: {exc}; fix or uninstall the package that provides it."
            ) from exc


def _check_pending(manager: pluggy.PluginManager) -> None:
    """Reject hook implementations that match no spec, suggesting the name probably meant."""
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise pluggy.PluginValidationError(exc.plugin, _explain_unknown_hooks(manager)) from exc


def _explain_unknown_hooks(manager: pluggy.PluginManager) -> str:
    known = [name for name, caller in vars(manager.hook).items() if caller.has_spec()]
    problems = []
    for name, caller in vars(manager.hook).items():
        if name.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            guess = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            problems.append(f"plugin {impl.plugin_name!r} implements unknown hook {name!r}{hint}")
    return "; ".join(problems) + (
        "; rename it to a hook of nebula.hookspecs (or of an installed package's hookspecs) "
        "or mark it @hookimpl(optionalhook=True)."
    )


def get_registry(hook_name: str, factory: Callable[[], R], *, argument: str = "registry") -> R:
    """The registry filled by calling hook ``hook_name`` once per plugin, built on first use.

    ``factory`` makes the empty registry, which each implementation receives as its
    ``argument`` keyword; the result is cached until :func:`reset_plugin_manager`. This is
    how a domain package builds registries for hooks declared in its own hookspecs module.
    """
    plugins = _current()
    with _lock:
        cached = plugins.registries.get(hook_name)
        if cached is not None:
            return cast(R, cached)
        caller = getattr(plugins.manager.hook, hook_name, None)
        if caller is None or not caller.has_spec():
            raise PluginLoadError(
                f"no hook named {hook_name!r} is declared; the package that owns it must add "
                "its hookspecs module through nebula_add_hookspecs."
            )
        registry = _collect(plugins.manager, hook_name, argument, factory())
        plugins.registries[hook_name] = registry
        return registry


def _collect(manager: pluggy.PluginManager, hook_name: str, argument: str, registry: R) -> R:
    """Call the hook plugin by plugin, in load order, so the registry knows who added what.

    Calling the hook once for all plugins would run them in pluggy's last-registered-first
    order and leave a duplicate-name error unable to say which plugin claimed the name.
    """
    hook = getattr(manager.hook, hook_name)
    implementers = {id(impl.plugin) for impl in hook.get_hookimpls()}
    loaded = [(name, plugin) for name, plugin in manager.list_name_plugin() if plugin is not None]
    for name, plugin in loaded:
        if id(plugin) not in implementers:
            continue
        others = [other for _, other in loaded if other is not plugin]
        with registry._attributed_to(name):
            manager.subset_hook_caller(hook_name, remove_plugins=others)(**{argument: registry})
    return registry

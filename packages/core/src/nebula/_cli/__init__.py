"""The ``nebula`` command: one module per command group, every command registered through
the command registry (core's own in ``_plugins/builtin.py``, as a plugin's would be)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    import pluggy

    from nebula._plugins.manager import PluginLoadError

    try:
        parser = _build_parser()
    except (PluginLoadError, pluggy.PluginValidationError, ValueError, TypeError) as exc:
        # A plugin failed to load, or its command was refused.
        print(f"nebula: error: {exc}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        print(f"nebula: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _build_parser() -> argparse.ArgumentParser:
    from nebula._plugins.manager import command_registry

    parser = argparse.ArgumentParser(prog="nebula", description="Nebula: distributed Python.")
    sub = parser.add_subparsers(dest="command")
    registry = command_registry()
    for name in registry.names():
        command = registry.get(name)
        command_parser = sub.add_parser(name, help=command.help)
        command.configure(command_parser)
        command_parser.set_defaults(func=command.run)
    return parser

"""nebula-serve's hook implementations (found through the ``nebula.plugins`` entry point).

Cheap to import: the ``serve`` command's code loads only when it runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nebula.plugins import hookimpl

if TYPE_CHECKING:
    from nebula.plugins import CommandRegistry


@hookimpl
def nebula_register_cli(commands: CommandRegistry) -> None:
    commands.add(
        "serve",
        help="run, deploy, inspect and stop serve applications",
        configure=_configure,
        run=_run,
    )


def _configure(parser: argparse.ArgumentParser) -> None:
    from nebula.serve._cli import configure

    configure(parser)


def _run(args: argparse.Namespace) -> int | None:
    from nebula.serve._cli import run

    return run(args)

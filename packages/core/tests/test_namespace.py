"""The shared `nebula` namespace: domain packages resolve when installed, and only then."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nebula


def test_a_missing_domain_package_says_how_to_install_it() -> None:
    # A fresh interpreter in which nebula.serve cannot be found, installed here or not.
    code = (
        "import sys, nebula\n"
        "sys.modules['nebula.serve'] = None\n"
        "try:\n"
        "    nebula.serve\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install nebula-serve" in result.stdout


def test_unknown_attributes_are_attribute_errors() -> None:
    with pytest.raises(AttributeError):
        nebula.no_such_thing  # noqa: B018


def test_importing_nebula_does_not_import_domain_packages() -> None:
    code = (
        "import sys, nebula; print(sorted(m for m in sys.modules if m.startswith('nebula.data')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_core_submodules_are_reachable_after_a_bare_import() -> None:
    code = (
        "import nebula\n"
        "print(nebula.util.placement_group.__name__,"
        " nebula.actor.exit_actor.__name__, nebula.job_submission.JobSubmissionClient.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == [
        "placement_group",
        "exit_actor",
        "JobSubmissionClient",
    ]

"""Developer sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``bench``, ``demo``."""

from __future__ import annotations

import nox

PACKAGES = ["packages/core", "packages/data"]


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", *PACKAGES, "-r", "requirements-dev.txt")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", *PACKAGES, "mypy")
    session.run("mypy", "packages/core/src/nebula", "packages/data/src/nebula/data")


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", *PACKAGES)
    session.run("nebula", "microbenchmark", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    session.install(*PACKAGES)
    session.run("python", "examples/demo.py")

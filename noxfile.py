"""Developer sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``bench``, ``demo``."""

from __future__ import annotations

import nox

PACKAGES = [
    "packages/core",
    "packages/data",
    "packages/tune",
    "packages/rl",
    "packages/serve",
]


@nox.session
def tests(session: nox.Session) -> None:
    session.install("torch==2.13.0")  # the CPU build, before nebula-rl asks for torch
    session.install(*(f"-e{p}" for p in PACKAGES), "-r", "requirements-dev.txt")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install(*(f"-e{p}" for p in PACKAGES), "mypy")
    session.run(
        "mypy",
        "packages/core/src/nebula",
        *(f"{package}/src/nebula/{package.rsplit('/', 1)[1]}" for package in PACKAGES[1:]),
    )


@nox.session
def bench(session: nox.Session) -> None:
    session.install(*(f"-e{p}" for p in PACKAGES))
    session.run("nebula", "microbenchmark", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    session.install(*PACKAGES)
    session.run("python", "examples/demo.py")

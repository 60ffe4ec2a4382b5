"""Each distribution installs alone and its README quick start runs as written.

For every package under ``packages/``: a fresh virtual environment, ``pip install`` of core
and that package only (nothing from the test requirements), then the first Python block
under the README's "Quick start" heading, run in an empty directory. Core alone must not
bring in pyarrow, pandas, torch, gymnasium or starlette.

    python3 .ci/check_installs.py [PACKAGE ...]      # default: every package
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"
NOT_IN_CORE = ("pyarrow", "pandas", "torch", "gymnasium", "starlette", "uvicorn")
# Installed first where a package needs it, so pip takes the CPU build from this machine's
# disk instead of a multi-gigabyte CUDA build.
PREINSTALL = {"rl": ["torch==2.13.0"]}
QUICK_START_TIMEOUT_S = 600


def quick_start(readme: Path) -> str:
    text = readme.read_text()
    section = re.search(r"^## Quick start[^\n]*\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if section is None:
        raise SystemExit(f"{readme} has no '## Quick start' section")
    block = re.search(r"```python\n(.*?)```", section.group(1), re.S)
    if block is None:
        raise SystemExit(f"{readme}'s quick start has no python block")
    return block.group(1)


def check(package: str, workdir: Path) -> None:
    started = time.monotonic()
    venv = workdir / f"venv-{package}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if PREINSTALL.get(package):
        subprocess.run([*pip, *PREINSTALL[package]], check=True)
    targets = [str(PACKAGES / "core")]
    if package != "core":
        targets.append(str(PACKAGES / package))
    subprocess.run([*pip, *targets], check=True)
    if package == "core":
        code = "import importlib.util as u; print([m for m in %r if u.find_spec(m)])"
        found = subprocess.run(
            [python, "-c", code % (NOT_IN_CORE,)], check=True, capture_output=True, text=True
        ).stdout.strip()
        if found != "[]":
            raise SystemExit(f"installing nebula-core alone brought in {found}")
    script = workdir / f"quick_start_{package}.py"
    script.write_text(quick_start(PACKAGES / package / "README.md"))
    run_dir = workdir / f"run-{package}"
    run_dir.mkdir()
    subprocess.run([python, str(script)], cwd=run_dir, check=True, timeout=QUICK_START_TIMEOUT_S)
    print(
        f"{package}: installed alone and ran its quick start ({time.monotonic() - started:.0f} s)"
    )


def main(argv: list[str]) -> int:
    packages = argv or sorted(p.name for p in PACKAGES.iterdir() if (p / "pyproject.toml").exists())
    packages.sort(key=lambda name: name != "core")
    with tempfile.TemporaryDirectory(prefix="nebula-install-check-") as tmp:
        for package in packages:
            check(package, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

from __future__ import annotations

pytest_plugins = ["nebula.testing.pytest_plugin"]

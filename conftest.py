"""Settings for the whole repository's test run.

Clusters started by tests run without the dashboard (a process per cluster that few tests
look at); the dashboard's own tests ask for it.
"""

from __future__ import annotations

import os

os.environ.setdefault("NEBULA_INCLUDE_DASHBOARD", "0")

"""A joblib backend: ``joblib.Parallel`` runs its batches as tasks on a Nebula cluster.

::

    import joblib
    from nebula.util.joblib import register_nebula

    register_nebula()
    with joblib.parallel_backend("nebula"):
        results = joblib.Parallel(n_jobs=-1)(joblib.delayed(f)(x) for x in range(100))

The batches run on a ``nebula.util.multiprocessing.Pool`` of actors; ``n_jobs=-1`` means
every CPU of the cluster (``nebula.init()`` runs first if needed). joblib is not a
dependency of Nebula: install it to use this. ``register_ray`` registers the same backend
under the name ``"ray"`` too, so code written for that name runs unchanged.
"""

from __future__ import annotations

from typing import Any

try:
    from joblib import register_parallel_backend
    from joblib._parallel_backends import (
        AutoBatchingMixin,
        ParallelBackendBase,
        PoolManagerMixin,
    )
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError("nebula.util.joblib needs joblib: pip install joblib") from exc

import nebula
from nebula.util.multiprocessing import Pool


class NebulaBackend(AutoBatchingMixin, PoolManagerMixin, ParallelBackendBase):  # type: ignore[misc]
    """joblib's multiprocessing backend, with a pool of Nebula actors for processes."""

    supports_retrieve_callback = True

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        if n_jobs < 0:
            if not nebula.is_initialized():
                nebula.init()
            cpus = int(nebula.cluster_resources().get("CPU", 1))
            return max(cpus + 1 + n_jobs, 1)
        return n_jobs

    def configure(
        self,
        n_jobs: int | None = 1,
        parallel: Any = None,
        prefer: Any = None,
        require: Any = None,
        **backend_args: Any,
    ) -> int:
        jobs = self.effective_n_jobs(n_jobs)
        self.parallel = parallel
        self._pool = Pool(processes=jobs)
        return jobs


def register_nebula() -> None:
    """Make ``joblib.parallel_backend("nebula")`` run on the Nebula cluster."""
    register_parallel_backend("nebula", NebulaBackend)


def register_ray() -> None:
    """``register_nebula``, also under the name ``"ray"``, for code written for that name."""
    register_nebula()
    register_parallel_backend("ray", NebulaBackend)


__all__ = ["NebulaBackend", "register_nebula", "register_ray"]

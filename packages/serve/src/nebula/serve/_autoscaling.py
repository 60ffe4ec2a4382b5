"""The autoscaling decision: a pure object fed load reports, returning a replica count.

The load of a deployment is the sum, over every caller, of its requests in flight and
waiting (each router reports its own). The policy wants ``ceil(load / target)`` replicas
within ``[min_replicas, max_replicas]``, and applies a change only once the wish has pointed
the same way for ``upscale_delay_s`` (``downscale_delay_s`` when scaling down). Scaling up
from zero replicas does not wait: a request is already waiting.
"""

from __future__ import annotations

import math
import time

from nebula.serve.config import AutoscalingConfig

# A caller that has not reported for this long is presumed gone.
REPORT_EXPIRY_S = 5.0


class AutoscalingPolicy:
    def __init__(self, config: AutoscalingConfig) -> None:
        self.config = config
        self._reports: dict[str, tuple[float, float]] = {}
        self._wish_since: float | None = None
        self._wish_direction = 0

    def record(self, caller_id: str, load: float, at: float | None = None) -> None:
        self._reports[caller_id] = (load, time.time() if at is None else at)

    def total_load(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        expired = [k for k, (_, at) in self._reports.items() if now - at > REPORT_EXPIRY_S]
        for key in expired:
            del self._reports[key]
        return sum(load for load, _ in self._reports.values())

    def desired(self, current: int, now: float | None = None) -> int:
        """The replica count to run now, given ``current`` (the present target)."""
        now_wall = time.time() if now is None else now
        cfg = self.config
        load = self.total_load(now_wall)
        wanted = math.ceil(load / cfg.target_ongoing_requests) if load > 0 else 0
        if cfg.upscaling_factor is not None and wanted > current:
            wanted = current + math.ceil((wanted - current) * cfg.upscaling_factor)
        if cfg.downscaling_factor is not None and wanted < current:
            wanted = current - math.ceil((current - wanted) * cfg.downscaling_factor)
        wanted = max(cfg.min_replicas, min(cfg.max_replicas, wanted))
        if wanted == current:
            self._wish_since = None
            self._wish_direction = 0
            return current
        if current == 0 and wanted > 0:
            self._wish_since = None
            return wanted
        direction = 1 if wanted > current else -1
        if direction != self._wish_direction or self._wish_since is None:
            self._wish_direction = direction
            self._wish_since = now_wall
        delay = cfg.upscale_delay_s if direction > 0 else cfg.downscale_delay_s
        if wanted == 0 and cfg.downscale_to_zero_delay_s is not None:
            delay = cfg.downscale_to_zero_delay_s
        if now_wall - self._wish_since >= delay:
            self._wish_since = None
            self._wish_direction = 0
            return wanted
        return current

"""``RLlibCallback``: subclass it and override the events you need; pass it to
``config.callbacks(MyCallback)``. They run in the driver process."""

from __future__ import annotations

from typing import Any

__all__ = ["RLlibCallback"]


class RLlibCallback:
    def on_algorithm_init(self, *, algorithm: Any, metrics_logger: Any = None, **kw: Any) -> None:
        pass

    def on_train_result(
        self, *, algorithm: Any, result: dict[str, Any], metrics_logger: Any = None, **kw: Any
    ) -> None:
        pass

    def on_evaluate_start(self, *, algorithm: Any, metrics_logger: Any = None, **kw: Any) -> None:
        pass

    def on_evaluate_end(
        self,
        *,
        algorithm: Any,
        evaluation_metrics: dict[str, Any],
        metrics_logger: Any = None,
        **kw: Any,
    ) -> None:
        pass

    def on_checkpoint_loaded(self, *, algorithm: Any, **kw: Any) -> None:
        pass

    def on_env_runners_recreated(
        self,
        *,
        algorithm: Any,
        env_runner_group: Any,
        env_runner_indices: list[int],
        is_evaluation: bool,
        **kw: Any,
    ) -> None:
        pass

"""Learner: the update math on torch modules; LearnerGroup: one local learner or several actors.

A :class:`Learner` is a plain object holding the modules (by module id) and their
optimizers; an algorithm subclasses it with its loss. With ``num_learners > 1`` each learner
actor trains on its own shard of the batch and the gradients are averaged across them with
an all-reduce (torch.distributed over gloo) before every optimizer step, so all copies stay
identical.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import nebula

Batch = dict[str, dict[str, Any]]  # module id -> column -> array
Stats = dict[str, dict[str, float]]


class Learner:
    """Modules, optimizers and ``update(batch) -> stats``; subclasses define the loss."""

    def __init__(
        self,
        config: Any,
        modules: dict[str, torch.nn.Module],
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.config = config
        self.modules = modules
        self.rank = rank
        self.world_size = world_size
        self.optimizers: dict[str, torch.optim.Optimizer] = self.configure_optimizers()

    # ------------------------------------------------------------------ to override
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = self._lr(0)
        return {
            mid: torch.optim.Adam(m.parameters(), lr=lr, fused=True)
            for mid, m in self.modules.items()
        }

    def update(self, batch: Batch, timestep: int) -> Stats:
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        return {}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        pass

    @staticmethod
    def split_batch(batch: Batch, n: int) -> list[Batch]:
        """``n`` equal shards of each module's rows (so every learner takes the same steps)."""
        shards: list[Batch] = [{} for _ in range(n)]
        for mid, columns in batch.items():
            rows = len(next(iter(columns.values())))
            size = rows // n
            for i in range(n):
                shards[i][mid] = {k: v[i * size : (i + 1) * size] for k, v in columns.items()}
        return shards

    # ------------------------------------------------------------------ helpers
    def _lr(self, timestep: int) -> float:
        from nebula.rl._settings import interpolate

        return interpolate(self.config.lr, timestep)

    def set_lr(self, optimizer: torch.optim.Optimizer, lr: float) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr

    def apply_gradients(
        self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, grad_clip: float | None
    ) -> float:
        """Backpropagate, average gradients across learners, clip, step; the gradient norm."""
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if self.world_size > 1:
            flat = torch.cat([p.grad.reshape(-1) for p in params])
            torch.distributed.all_reduce(flat)
            flat /= self.world_size
            offset = 0
            for p in params:
                n = p.grad.numel()
                p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
                offset += n
        if grad_clip is not None:
            by = self.config.grad_clip_by
            if by == "value":
                torch.nn.utils.clip_grad_value_(params, grad_clip)
                norm = float(torch.norm(torch.stack([p.grad.norm() for p in params])))
            else:
                norm = float(torch.nn.utils.clip_grad_norm_(params, grad_clip))
        else:
            norm = (
                float(torch.norm(torch.stack([p.grad.norm() for p in params]))) if params else 0.0
            )
        optimizer.step()
        return norm

    # ------------------------------------------------------------------ state
    def inference_state(self) -> dict[str, Any]:
        return {mid: m.inference_state() for mid, m in self.modules.items()}  # type: ignore[operator]

    def get_state(self) -> dict[str, Any]:
        return {
            "modules": {mid: _to_numpy(m.state_dict()) for mid, m in self.modules.items()},
            "optimizers": {k: copy.deepcopy(o.state_dict()) for k, o in self.optimizers.items()},
            "extra": self.extra_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        for mid, sd in state["modules"].items():
            if mid in self.modules:
                self.modules[mid].load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
        for name, sd in state.get("optimizers", {}).items():
            if name in self.optimizers:
                self.optimizers[name].load_state_dict(sd)
        self.set_extra_state(state.get("extra", {}))


def _to_numpy(sd: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in sd.items()}


LearnerFactory = Callable[[int, int], Learner]  # (rank, world_size) -> Learner


class LearnerActor:
    """A learner in its own process; joins the gradient all-reduce group before building."""

    def __init__(self, factory: LearnerFactory, rank: int, world_size: int, threads: int) -> None:
        torch.set_num_threads(max(1, threads))
        self.factory = factory
        self.rank = rank
        self.world_size = world_size
        self.learner: Learner | None = None

    def address(self) -> tuple[str, int]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return "127.0.0.1", int(s.getsockname()[1])

    def setup(self, address: tuple[str, int]) -> bool:
        torch.distributed.init_process_group(
            "gloo",
            init_method=f"tcp://{address[0]}:{address[1]}",
            rank=self.rank,
            world_size=self.world_size,
        )
        self.learner = self.factory(self.rank, self.world_size)
        return True

    def update(self, batch: Batch, timestep: int) -> Stats:
        assert self.learner is not None
        return self.learner.update(batch, timestep)

    def get_state(self) -> dict[str, Any]:
        assert self.learner is not None
        return self.learner.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        assert self.learner is not None
        self.learner.set_state(state)

    def inference_state(self) -> dict[str, Any]:
        assert self.learner is not None
        return self.learner.inference_state()

    def call(self, method: str, *args: Any) -> Any:
        assert self.learner is not None
        return getattr(self.learner, method)(*args)


_RemoteLearner = nebula.remote(LearnerActor)


class LearnerGroup:
    """A local learner (``num_learners=0``), or learner actors averaging their gradients."""

    def __init__(
        self,
        factory: LearnerFactory,
        num_learners: int,
        *,
        num_cpus: float = 1,
        num_gpus: float = 0,
    ) -> None:
        self.local: Learner | None = None
        self.actors: list[Any] = []
        threads = max(1, int(num_cpus))
        if num_learners == 0:
            # Intra-op threads beyond the learner's CPUs only contend with the env runners:
            # small networks train several times faster on the one thread they were given.
            torch.set_num_threads(threads)
            self.local = factory(0, 1)
            return
        options = {"num_cpus": num_cpus, "num_gpus": num_gpus}
        self.actors = [
            _RemoteLearner.options(**options).remote(factory, rank, num_learners, threads)
            for rank in range(num_learners)
        ]
        address = nebula.get(self.actors[0].address.remote())
        nebula.get([a.setup.remote(address) for a in self.actors])
        if num_learners > 1:  # start from identical weights
            state = nebula.get(self.actors[0].get_state.remote())
            ref = nebula.put(state)
            nebula.get([a.set_state.remote(ref) for a in self.actors[1:]])

    @property
    def learner_class(self) -> type[Learner]:
        return type(self.local) if self.local is not None else Learner

    def update(
        self, batch: Batch, timestep: int, split: Callable[[Batch, int], list[Batch]] | None = None
    ) -> Stats:
        if self.local is not None:
            return self.local.update(batch, timestep)
        shards = (split or Learner.split_batch)(batch, len(self.actors))
        results = nebula.get(
            [a.update.remote(shard, timestep) for a, shard in zip(self.actors, shards)]
        )
        return _mean_stats(results)

    def inference_state(self) -> dict[str, Any]:
        if self.local is not None:
            return self.local.inference_state()
        return nebula.get(self.actors[0].inference_state.remote())

    def get_state(self) -> dict[str, Any]:
        if self.local is not None:
            return self.local.get_state()
        return nebula.get(self.actors[0].get_state.remote())

    def set_state(self, state: dict[str, Any]) -> None:
        if self.local is not None:
            self.local.set_state(state)
            return
        ref = nebula.put(state)
        nebula.get([a.set_state.remote(ref) for a in self.actors])

    def call(self, method: str, *args: Any) -> Any:
        """Run a learner method on every learner; the first learner's answer."""
        if self.local is not None:
            return getattr(self.local, method)(*args)
        return nebula.get([a.call.remote(method, *args) for a in self.actors])[0]

    def stop(self) -> None:
        for actor in self.actors:
            nebula.kill(actor)
        self.actors = []


def _mean_stats(results: list[Stats]) -> Stats:
    out: Stats = {}
    for mid in results[0]:
        keys = results[0][mid].keys()
        out[mid] = {}
        for k in keys:
            values = [r[mid][k] for r in results if k in r.get(mid, {})]
            if isinstance(values[0], np.ndarray):  # per-row values, in shard order
                out[mid][k] = np.concatenate(values)  # type: ignore[assignment]
            elif k.startswith("num_"):
                out[mid][k] = float(np.sum(values))
            else:
                out[mid][k] = float(np.mean(values))
    return out

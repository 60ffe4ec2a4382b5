"""The pure parts, without a cluster: buffers, GAE, V-trace, n-step rows, the sampler."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from nebula.rl._buffers import PrioritizedReplayBuffer, ReplayBuffer, make_buffer
from nebula.rl._config import ConfigError
from nebula.rl._envs import make_vector_env, resolve_env_creator
from nebula.rl._impala import vtrace
from nebula.rl._offpolicy import transitions
from nebula.rl._ppo import PPOConfig, gae, make_policy
from nebula.rl._sampler import Fragment, VectorSampler


def rows(n: int, start: int = 0) -> dict[str, np.ndarray]:
    return {"x": np.arange(start, start + n, dtype=np.float32), "y": np.ones((n, 2))}


def test_replay_buffer_keeps_the_last_capacity_rows() -> None:
    buf = ReplayBuffer(5, seed=0)
    buf.add(rows(3))
    buf.add(rows(4, start=3))
    assert len(buf) == 5
    assert sorted(buf.columns["x"].tolist()) == [2, 3, 4, 5, 6]
    batch = buf.sample(100)
    assert set(batch["x"].tolist()) <= {2, 3, 4, 5, 6}
    assert batch["weights"].shape == (100,)
    other = ReplayBuffer(5)
    other.set_state(buf.get_state())
    assert sorted(other.columns["x"].tolist()) == [2, 3, 4, 5, 6] and other.next == buf.next


def test_prioritized_buffer_samples_in_proportion_to_priority() -> None:
    buf = PrioritizedReplayBuffer(4, alpha=1.0, beta=1.0, seed=0)
    idx = buf.add(rows(4))
    buf.update_priorities(idx, np.array([1.0, 1.0, 1.0, 7.0]))
    batch = buf.sample(10000)
    share = np.mean(batch["x"] == 3)
    assert 0.65 < share < 0.75  # 7 / 10
    # rarely drawn rows weigh most; the weights are normalized to at most 1
    assert batch["weights"][batch["x"] == 0].max() == pytest.approx(1.0)
    assert batch["weights"][batch["x"] == 3].max() < 0.2
    restored = PrioritizedReplayBuffer(4, alpha=1.0, beta=1.0, seed=0)
    restored.set_state(buf.get_state())
    assert restored.tree.total == pytest.approx(buf.tree.total)


def test_buffer_types_by_name() -> None:
    assert type(make_buffer({"type": "ReplayBuffer", "capacity": 3})) is ReplayBuffer
    assert isinstance(
        make_buffer({"type": "PrioritizedEpisodeReplayBuffer"}), PrioritizedReplayBuffer
    )
    with pytest.raises(ConfigError, match="did you mean 'ReplayBuffer'"):
        make_buffer({"type": "ReplayBufer"})


def test_gae_matches_a_per_step_loop_and_respects_episode_ends() -> None:
    rng = np.random.default_rng(0)
    T, N, gamma, lam = 6, 2, 0.9, 0.8
    r, v = rng.random((T, N)).astype(np.float32), rng.random((T, N)).astype(np.float32)
    terms = np.zeros((T, N), bool)
    truncs = np.zeros((T, N), bool)
    terms[2, 0] = True
    truncs[3, 1] = True
    trunc_v = np.zeros((T, N), np.float32)
    trunc_v[3, 1] = 5.0
    last = np.array([0.5, 0.25], np.float32)
    adv = gae(r, v, terms, truncs, trunc_v, last, gamma, lam)
    for n in range(N):
        running = 0.0
        for t in reversed(range(T)):
            nv = last[n] if t == T - 1 else v[t + 1, n]
            if truncs[t, n]:
                nv = trunc_v[t, n]
            if terms[t, n]:
                nv = 0.0
            carry = 0.0 if (terms[t, n] or truncs[t, n]) else 1.0
            running = r[t, n] + gamma * nv - v[t, n] + gamma * lam * carry * running
            assert adv[t, n] == pytest.approx(running, rel=1e-5)


def test_vtrace_on_policy_gives_n_step_returns() -> None:
    T, B, gamma = 5, 3, 0.9
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.rand(T, B, generator=g), torch.rand(T, B, generator=g)
    discounts = torch.full((T, B), gamma)
    discounts[2, 1] = 0.0
    boot = torch.rand(B, generator=g)
    logp = torch.zeros(T, B)
    vs, pg = vtrace(logp, logp, rewards, discounts, values, boot, 1.0, 1.0)
    expected = torch.empty(T, B)
    acc = boot.clone()
    for t in reversed(range(T)):
        acc = rewards[t] + discounts[t] * acc
        expected[t] = acc
    assert torch.allclose(vs, expected, atol=1e-5)
    next_vs = torch.cat([vs[1:], boot[None]])
    assert torch.allclose(pg, rewards + discounts * next_vs - values, atol=1e-5)


def test_n_step_rows_stop_at_episode_ends() -> None:
    T, N = 4, 1
    frag = Fragment(
        obs=np.arange(T, dtype=np.float32).reshape(T, N, 1),
        actions=np.zeros((T, N), np.int64),
        rewards=np.ones((T, N), np.float32),
        terminateds=np.array([[False], [True], [False], [False]]),
        truncateds=np.zeros((T, N), bool),
        extras={},
        next_obs=np.array([[9.0]], np.float32),
    )
    out = transitions(frag, 0.5, 2)
    assert out["rewards"].tolist() == [1.5, 1.0, 1.5, 1.0]
    assert out["new_obs"][:, 0].tolist() == [2.0, 2.0, 9.0, 9.0]
    assert out["terminateds"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert out["discounts"].tolist() == [0.25, 0.5, 0.25, 0.5]


def test_sampler_continues_episodes_and_keeps_the_last_obs_of_truncated_ones() -> None:
    config = PPOConfig().environment("CartPole-v1").training(gamma=0.99)
    creator = resolve_env_creator(lambda ctx: gym.make("CartPole-v1", max_episode_steps=10))
    env = make_vector_env(creator, {}, 3, 0, 0)
    policy = make_policy(
        config, "default_policy", env.single_observation_space, env.single_action_space
    )
    torch.manual_seed(0)
    sampler = VectorSampler(env, policy, seed=0)
    steps = 0
    returns: list[float] = []
    for _ in range(4):
        batch, stats = sampler.sample(7, explore=True)
        cols = batch["default_policy"]
        assert cols["obs"].shape == (21, 4) and cols["actions"].shape == (21,)
        assert np.isfinite(cols["advantages"]).all()
        steps += 21
        returns += stats.returns
    assert all(r <= 10 for r in returns)
    assert len(returns) >= 6  # episodes of at most 10 steps over 84 steps in 3 envs
    assert sum(returns) <= steps
    sampler.close()

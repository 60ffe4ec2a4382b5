"""``nebula rl train`` and ``nebula rl evaluate``: train until a return is reached, replay it.

Examples::

    nebula rl train --algo PPO --env CartPole-v1 --stop-return 450 --config lr=0.001
    nebula rl evaluate ~/nebula_results/PPO_CartPole-v1_.../checkpoint_000012 --episodes 5
"""

from __future__ import annotations

import argparse
import ast
import math
import sys
import time
from typing import Any

HELP = "train reinforcement learning algorithms and evaluate their checkpoints"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rl_command")
    train = sub.add_parser("train", help="train an algorithm until a stop condition holds")
    train.add_argument("--algo", required=True, help="PPO, DQN, IMPALA or SAC")
    train.add_argument("--env", required=True, help="a gymnasium id or a registered env name")
    train.add_argument(
        "--stop-return",
        type=float,
        default=None,
        help="stop when the mean episode return reaches this",
    )
    train.add_argument("--stop-iters", type=int, default=None, help="stop after N iterations")
    train.add_argument(
        "--stop-timesteps", type=int, default=None, help="stop after N sampled env steps"
    )
    train.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config setting (repeatable), e.g. lr=0.0003 or "
        "model_config={'fcnet_hiddens':[64,64]}",
    )
    train.add_argument("--checkpoint-dir", default=None, help="where to write the checkpoint")
    train.add_argument("--address", default=None, help="a running cluster (default: start one)")
    train.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local cluster")
    evaluate = sub.add_parser("evaluate", help="roll out episodes with a checkpoint's policy")
    evaluate.add_argument("checkpoint", help="a checkpoint directory written by train or save")
    evaluate.add_argument("--episodes", type=int, default=10)
    evaluate.add_argument(
        "--explore",
        action="store_true",
        help="sample actions instead of taking the most likely one",
    )
    evaluate.add_argument("--address", default=None)
    parser.set_defaults(rl_parser=parser)


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``["lr=0.001", "env_config={'a': 1}"]`` -> ``{"lr": 0.001, "env_config": {"a": 1}}``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--config {pair!r} is not KEY=VALUE")
        try:
            out[key.strip()] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key.strip()] = text
    return out


def run(args: argparse.Namespace) -> int:
    if args.rl_command == "train":
        return train(args)
    if args.rl_command == "evaluate":
        return evaluate(args)
    args.rl_parser.print_help()
    return 2


def _init(address: str | None, num_cpus: int | None = None) -> None:
    import nebula

    if address:
        nebula.init(address=address)
    elif num_cpus:
        nebula.init(num_cpus=num_cpus)
    else:
        nebula.init()


def train(args: argparse.Namespace) -> int:
    from nebula.rl._plugin import ALGORITHMS, algorithm_class

    name = args.algo.upper()
    if name not in ALGORITHMS:
        raise ValueError(f"--algo {args.algo!r} is not one of {', '.join(ALGORITHMS)}")
    if args.stop_return is None and args.stop_iters is None and args.stop_timesteps is None:
        raise ValueError("give a stop condition: --stop-return, --stop-iters or --stop-timesteps")
    settings = parse_settings(args.config)
    algo_class = algorithm_class(name)
    config = algo_class.get_default_config().environment(args.env).update_from_dict(settings)
    _init(args.address, args.num_cpus)
    algo = config.build_algo()
    start = time.time()
    try:
        while True:
            result = algo.train()
            ret = result["env_runners"]["episode_return_mean"]
            steps = result["num_env_steps_sampled_lifetime"]
            print(
                f"iter {result['training_iteration']:4d}  return {ret:9.2f}  "
                f"steps {steps:9d}  time {time.time() - start:7.1f}s",
                flush=True,
            )
            if args.stop_return is not None and not math.isnan(ret) and ret >= args.stop_return:
                break
            if args.stop_iters is not None and result["training_iteration"] >= args.stop_iters:
                break
            if args.stop_timesteps is not None and steps >= args.stop_timesteps:
                break
        path = algo.save_to_path(args.checkpoint_dir)
        print(f"checkpoint: {path}", flush=True)
    finally:
        algo.stop()
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from nebula.rl._algorithm import Algorithm

    _init(args.address)
    config_changes = {
        "evaluation_duration": args.episodes,
        "evaluation_duration_unit": "episodes",
        "evaluation_num_env_runners": 0,
    }
    algo = Algorithm.from_checkpoint(args.checkpoint)
    try:
        algo.config.update_from_dict(config_changes)
        algo.config.evaluation_config = {"explore": bool(args.explore)}
        metrics = algo.evaluate()["env_runners"]
        print(
            f"episodes {metrics['num_episodes']}  return mean {metrics['episode_return_mean']:.2f}"
            f"  min {metrics['episode_return_min']:.2f}  max {metrics['episode_return_max']:.2f}"
            f"  length mean {metrics['episode_len_mean']:.1f}",
            file=sys.stdout,
            flush=True,
        )
    finally:
        algo.stop()
    return 0

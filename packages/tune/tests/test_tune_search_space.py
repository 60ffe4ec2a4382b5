"""Search spaces resolve the way Ray resolves them; searchers and their wrappers (no cluster)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from nebula.tune.search import (
    BasicVariantGenerator,
    ConcurrencyLimiter,
    Domain,
    Repeater,
    Searcher,
    SearchGenerator,
)

from nebula import tune


def _configs(space, num_samples=1, seed=0, **kwargs):
    search = BasicVariantGenerator(random_state=seed, **kwargs)
    search.set_search_properties(None, None, space, num_samples)
    out = []
    while (suggestion := search.next_trial(f"t{len(out)}")) is not None:
        out.append(suggestion.config)
    assert search.is_finished()
    return out


def test_grid_search_is_the_plain_dict_ray_uses():
    assert tune.grid_search([1, 2]) == {"grid_search": [1, 2]}
    with pytest.raises(ValueError, match="at least one"):
        tune.grid_search([])


def test_grids_cross_first_varying_fastest_and_repeat_per_sample():
    space = {"a": tune.grid_search([1, 2]), "b": {"c": tune.grid_search(["x", "y"])}, "k": 7}
    configs = _configs(space, num_samples=2)
    pairs = [(c["a"], c["b"]["c"]) for c in configs]
    assert pairs == [(1, "x"), (2, "x"), (1, "y"), (2, "y")] * 2
    assert all(c["k"] == 7 for c in configs)


def test_each_grid_point_gets_fresh_random_draws():
    configs = _configs({"a": tune.grid_search([1, 2]), "lr": tune.uniform(0, 1)}, num_samples=3)
    assert len(configs) == 6
    assert len({c["lr"] for c in configs}) == 6


@pytest.mark.parametrize(
    ("domain", "check"),
    [
        (tune.uniform(2, 3), lambda v: isinstance(v, float) and 2 <= v < 3),
        (tune.quniform(0, 10, 2.5), lambda v: v in (0, 2.5, 5, 7.5, 10)),
        (tune.loguniform(1e-4, 1e-1), lambda v: 1e-4 <= v <= 1e-1),
        (tune.qloguniform(1, 100, 5), lambda v: v % 5 == 0 and 1 <= v <= 100),
        (tune.randint(3, 6), lambda v: isinstance(v, int) and 3 <= v < 6),
        (tune.qrandint(0, 20, 5), lambda v: v in (0, 5, 10, 15, 20)),
        (tune.lograndint(1, 1000), lambda v: isinstance(v, int) and 1 <= v < 1000),
        (tune.randn(10, 0.1), lambda v: 9 < v < 11),
        (tune.choice(["a", "b"]), lambda v: v in ("a", "b")),
    ],
)
def test_domains_sample_within_their_range(domain, check):
    assert isinstance(domain, Domain)
    values = domain.sample(size=200, random_state=1)
    assert all(check(v) for v in values)


def test_loguniform_is_spread_over_orders_of_magnitude():
    values = np.array(tune.loguniform(1e-5, 1).sample(size=2000, random_state=3))
    below = np.mean(values < 1e-3)
    assert 0.3 < below < 0.5  # 2 of 5 decades


def test_sample_from_sees_the_resolved_config_and_nested_lists():
    space = {
        "width": tune.grid_search([4, 8]),
        "double": tune.sample_from(lambda spec: spec.config.width * 2),
        "layers": [tune.choice([1, 2]), {"act": tune.choice(["relu"])}],
        "const": tune.sample_from(lambda: "fixed"),
    }
    configs = _configs(space)
    assert [c["double"] for c in configs] == [8, 16]
    assert all(c["layers"][0] in (1, 2) and c["layers"][1] == {"act": "relu"} for c in configs)
    assert all(c["const"] == "fixed" for c in configs)


def test_random_state_makes_the_search_reproducible():
    space = {"x": tune.uniform(0, 1), "y": tune.randint(0, 100)}
    assert _configs(space, 5, seed=4) == _configs(space, 5, seed=4)


def test_points_to_evaluate_come_first():
    configs = _configs({"x": tune.uniform(0, 1)}, 3, points_to_evaluate=[{"x": 0.5}])
    assert configs[0]["x"] == 0.5 and len(configs) == 3


def test_a_pickled_generator_continues_where_it_stopped():
    space = {"x": tune.uniform(0, 1)}
    search = BasicVariantGenerator(random_state=5)
    search.set_search_properties(None, None, space, 6)
    first = [search.next_trial(str(i)).config["x"] for i in range(3)]
    restored = pickle.loads(pickle.dumps(search))
    rest = [restored.next_trial(str(i)).config["x"] for i in range(3, 6)]
    assert len(set(first + rest)) == 6
    assert restored.next_trial("6") is None
    assert _configs(space, 6, seed=5) == [{"x": v} for v in first + rest]


class _Counting(Searcher):
    def __init__(self):
        super().__init__(metric="m", mode="max")
        self.completed = []
        self.n = 0

    def suggest(self, trial_id):
        self.n += 1
        return {"i": self.n}

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append((trial_id, result))


def test_concurrency_limiter_caps_live_trials():
    limiter = ConcurrencyLimiter(_Counting(), max_concurrent=2)
    assert limiter.suggest("a") == {"i": 1}
    assert limiter.suggest("b") == {"i": 2}
    assert limiter.suggest("c") is None
    limiter.on_trial_complete("a", {"m": 1})
    assert limiter.suggest("c") == {"i": 3}


def test_concurrency_limiter_batch_waits_for_the_whole_batch():
    limiter = ConcurrencyLimiter(_Counting(), max_concurrent=2, batch=True)
    limiter.suggest("a"), limiter.suggest("b")
    limiter.on_trial_complete("a", {"m": 1})
    assert limiter.suggest("c") is None
    limiter.on_trial_complete("b", {"m": 1})
    assert limiter.suggest("c") == {"i": 3}


def test_repeater_repeats_and_reports_the_mean():
    inner = _Counting()
    repeater = Repeater(inner, repeat=3)
    configs = [repeater.suggest(f"t{i}") for i in range(3)]
    assert [c["__trial_index__"] for c in configs] == [0, 1, 2]
    assert all(c["i"] == 1 for c in configs)
    for i, score in enumerate([1.0, 2.0, 6.0]):
        repeater.on_trial_complete(f"t{i}", {"m": score})
    assert inner.completed == [("t0", {"m": 3.0})]
    assert repeater.suggest("t3")["i"] == 2


def test_search_generator_merges_suggestions_into_constants_and_stops_at_num_samples():
    search = SearchGenerator(_Counting())
    search.set_search_properties("m", "max", {"i": tune.uniform(0, 1), "lr": 0.1}, 2)
    first = search.next_trial("a")
    assert first.config == {"i": 1, "lr": 0.1}
    assert search.next_trial("b") is not None
    assert search.next_trial("c") is None and search.is_finished()


def test_search_generator_refuses_grids():
    with pytest.raises(ValueError, match="grid_search"):
        SearchGenerator(_Counting()).set_search_properties(
            "m", "max", {"x": tune.grid_search([1])}, 1
        )


def test_optuna_search_finds_the_optimum_of_a_quadratic():
    pytest.importorskip("optuna")
    from nebula.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(seed=0, points_to_evaluate=[{"x": 1.0, "kind": "a"}])
    space = {"x": tune.uniform(-5, 5), "kind": tune.choice(["a", "b"]), "n": tune.randint(1, 4)}
    searcher.set_search_properties("loss", "min", space)
    best = float("inf")
    for i in range(40):
        config = searcher.suggest(str(i))
        if i == 0:
            assert config["x"] == 1.0 and config["kind"] == "a"
        assert -5 <= config["x"] <= 5 and config["kind"] in ("a", "b") and 1 <= config["n"] <= 3
        loss = (config["x"] - 2) ** 2 + (config["kind"] == "b")
        best = min(best, loss)
        searcher.on_trial_complete(str(i), {"loss": loss})
    assert best < 0.1


def test_optuna_refuses_what_it_cannot_search():
    pytest.importorskip("optuna")
    from nebula.tune.search.optuna import OptunaSearch

    with pytest.raises(ValueError, match="cannot search"):
        OptunaSearch(metric="m", mode="max").set_search_properties(None, None, {"x": tune.randn()})

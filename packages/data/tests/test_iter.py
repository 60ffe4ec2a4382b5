"""Tests for ``nebula.data.iter``: parallel and local iterators over real shard actors."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import nebula.data.iter as par_iter
import pytest
from nebula.data.iter import LocalIterator, ParallelIterator, ParallelIteratorWorker

import nebula


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    """One local cluster for the module; reuse one a conftest may already have started."""
    if nebula.is_initialized():
        yield
        return
    nebula.init(num_cpus=2)
    try:
        yield
    finally:
        nebula.shutdown()


# -- construction and names -----------------------------------------------------------


def test_constructor_reprs() -> None:
    assert repr(par_iter.from_items([1, 2, 3, 4], num_shards=2)) == (
        "ParallelIterator[from_items[int, 4, shards=2]]"
    )
    assert repr(par_iter.from_range(100, num_shards=4, repeat=True)) == (
        "ParallelIterator[from_range[100, shards=4, repeat=True]]"
    )
    assert repr(par_iter.from_iterators([range(3)], name="mine")) == "ParallelIterator[mine]"


def test_transform_reprs_chain_in_order() -> None:
    it = par_iter.from_range(10).for_each(abs).filter(bool).batch(2).flatten().combine(list)
    assert repr(it) == (
        "ParallelIterator[from_range[10, shards=2]]"
        ".for_each().filter().batch(2).flatten().combine()"
    )
    local = it.gather_sync().for_each(str)
    assert repr(local) == f"LocalIterator[{it!r}.gather_sync().for_each()]"


def test_from_items_deals_round_robin() -> None:
    it = par_iter.from_items(list("abcde"), num_shards=2)
    assert it.num_shards() == 2
    assert [list(s) for s in it.shards()] == [["a", "c", "e"], ["b", "d"]]


def test_from_range_contiguous_shards_last_takes_remainder() -> None:
    it = par_iter.from_range(10, num_shards=3)
    assert [list(s) for s in it.shards()] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


def test_from_iterators_accepts_callables_and_iterables() -> None:
    it = par_iter.from_iterators([lambda: iter([1, 2]), [10, 20]])
    assert it.gather_sync().take(10) == [1, 10, 2, 20]


def test_bad_arguments_fail_at_call_time() -> None:
    with pytest.raises(ValueError):
        par_iter.from_range(10, num_shards=0)
    with pytest.raises(ValueError):
        par_iter.from_items([1], num_shards=-1)
    it = par_iter.from_range(4)
    with pytest.raises(TypeError):
        it.for_each(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        it.filter("x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        it.batch(0)
    with pytest.raises(ValueError):
        it.gather_sync().batch(0)
    with pytest.raises(ValueError):
        it.repartition(0)
    with pytest.raises(ValueError):
        it.select_shards([5])
    with pytest.raises(TypeError):
        par_iter.from_iterators([(x for x in range(3))])  # generator objects cannot travel
    with pytest.raises(ValueError):
        par_iter.from_iterators([iter([1])], repeat=True)


def test_parallel_iterator_is_not_directly_iterable() -> None:
    with pytest.raises(TypeError, match="gather_sync"):
        iter(par_iter.from_range(4))


# -- parallel transformations -----------------------------------------------------------


def test_for_each_filter_batch_run_on_shards() -> None:
    it = par_iter.from_range(8, num_shards=2).for_each(lambda x: x * 10).filter(lambda x: x % 20)
    assert sorted(it.gather_sync()) == [10, 30, 50, 70]
    assert list(par_iter.from_range(6, 2).batch(2).gather_sync()) == [[0, 1], [3, 4], [2], [5]]


def test_flatten_and_combine() -> None:
    it = par_iter.from_items([[1, 2], [3], [4, 5]], num_shards=1)
    assert list(it.flatten().gather_sync()) == [1, 2, 3, 4, 5]
    doubled = par_iter.from_range(3, 1).combine(lambda x: [x, x])
    assert list(doubled.gather_sync()) == [0, 0, 1, 1, 2, 2]


def test_local_shuffle_keeps_items_within_shards() -> None:
    it = par_iter.from_range(40, num_shards=2).local_shuffle(8, seed=0)
    shards = [list(s) for s in it.shards()]
    assert sorted(shards[0]) == list(range(20))
    assert sorted(shards[1]) == list(range(20, 40))
    assert shards[0] != list(range(20))
    assert [list(s) for s in it.shards()] == shards  # seeded: reproducible


def test_union_and_select_shards() -> None:
    a = par_iter.from_items([1, 2], num_shards=1)
    b = par_iter.from_items([10, 20], num_shards=1).for_each(lambda x: -x)
    union = a.union(b)
    assert union.num_shards() == 2
    assert list(union.gather_sync()) == [1, -10, 2, -20]
    assert repr(union).startswith("ParallelIterator[ParallelUnion[ParallelIterator[from_items")
    selected = par_iter.from_range(9, num_shards=3).select_shards([2, 0])
    assert selected.num_shards() == 2
    assert list(selected.gather_sync()) == [6, 0, 7, 1, 8, 2]


def test_union_with_itself_uses_independent_streams() -> None:
    it = par_iter.from_range(4, num_shards=1)
    assert list(it.union(it.for_each(lambda x: x + 100)).gather_sync()) == [
        0, 100, 1, 101, 2, 102, 3, 103,
    ]  # fmt: skip


def test_repartition_deals_items_to_new_shards() -> None:
    it = par_iter.from_range(12, num_shards=2).for_each(lambda x: x * 2).repartition(3)
    assert it.num_shards() == 3
    shards = [list(s) for s in it.shards()]
    assert sorted(x for shard in shards for x in shard) == [x * 2 for x in range(12)]
    assert shards[0] == [0, 12, 6, 18]  # positions 0 and 3 of each parent, alternating


def test_get_shard_and_out_of_range() -> None:
    it = par_iter.from_range(6, num_shards=3)
    assert list(it.get_shard(1)) == [2, 3]
    with pytest.raises(ValueError):
        it.get_shard(3)


# -- reading ------------------------------------------------------------------------------


def test_gather_sync_is_deterministic_round_robin() -> None:
    it = par_iter.from_range(1000, num_shards=4)
    assert it.gather_sync().take(5) == [0, 250, 500, 750, 1]
    assert it.take(5) == [0, 250, 500, 750, 1]  # a new read starts over
    full = list(par_iter.from_range(7, num_shards=3).gather_sync())
    assert full == [0, 2, 4, 1, 3, 5, 6]


def test_gather_async_yields_every_item_once() -> None:
    it = par_iter.from_range(60, num_shards=3).for_each(lambda x: x + 1)
    assert sorted(it.gather_async()) == list(range(1, 61))
    assert sorted(it.gather_async(batch_ms=5, num_async=3)) == list(range(1, 61))
    with pytest.raises(ValueError):
        it.gather_async(num_async=0)


def test_gather_async_keeps_order_within_a_shard() -> None:
    items = list(par_iter.from_range(40, num_shards=2).gather_async(num_async=4))
    assert [x for x in items if x < 20] == list(range(20))
    assert [x for x in items if x >= 20] == list(range(20, 40))


def test_repeat_is_infinite_and_works_with_take() -> None:
    it = par_iter.from_range(4, num_shards=2, repeat=True)
    assert it.take(10) == [0, 2, 1, 3, 0, 2, 1, 3, 0, 2]
    local = it.gather_async()
    assert len(local.take(50)) == 50
    cycled = par_iter.from_iterators([lambda: iter("ab")], repeat=True)
    assert cycled.take(5) == ["a", "b", "a", "b", "a"]


def test_transformations_are_lazy(tmp_path: Path) -> None:
    marker = tmp_path / "calls"

    def record(x: int) -> int:
        with open(marker, "a") as f:
            f.write(".")
        return x

    it = par_iter.from_range(6, num_shards=2).for_each(record)
    local = it.gather_sync().for_each(record)
    it.shards()
    assert not marker.exists()  # building pipelines and readers ran nothing
    assert local.take(1) == [0]
    assert marker.exists()


def test_user_errors_come_back_as_their_own_class() -> None:
    it = par_iter.from_range(4, num_shards=2).for_each(lambda x: 1 // (x - 2))
    with pytest.raises(ZeroDivisionError):
        list(it.gather_sync())
    with pytest.raises(ZeroDivisionError):
        list(it.gather_async())


def test_shards_are_readable_inside_remote_functions() -> None:
    @nebula.remote
    def total(shard: LocalIterator[int]) -> int:
        return sum(shard)

    it = par_iter.from_range(30, num_shards=3).for_each(lambda x: x * 2)
    shards = it.shards()
    assert [repr(s) for s in shards] == [
        f"LocalIterator[from_range[30, shards=3].for_each().shard[{i}]]" for i in range(3)
    ]
    assert nebula.get([total.remote(s) for s in shards]) == [90, 290, 490]


def test_parallel_iterator_travels_into_a_task() -> None:
    @nebula.remote
    def first(it: ParallelIterator[int]) -> list[int]:
        return it.for_each(lambda x: x + 1).take(3)

    assert nebula.get(first.remote(par_iter.from_range(9, num_shards=3))) == [1, 4, 7]


def test_from_actors_with_custom_worker() -> None:
    @nebula.remote(num_cpus=0)
    class Letters(ParallelIteratorWorker):
        def __init__(self, text: str) -> None:
            super().__init__(lambda: iter(text), repeat=False)

    it = par_iter.from_actors([Letters.remote("ab"), Letters.remote("xyz")])
    assert repr(it) == "ParallelIterator[from_actors[shards=2]]"
    assert list(it.for_each(str.upper).gather_sync()) == ["A", "X", "B", "Y", "Z"]
    with pytest.raises(TypeError):
        par_iter.from_actors([object()])


# -- local iterators ----------------------------------------------------------------------


def test_local_iterator_methods() -> None:
    base = LocalIterator(lambda: iter(range(10)), name="nums")
    assert repr(base) == "LocalIterator[nums]"
    assert base.for_each(lambda x: x * x).filter(lambda x: x % 2).take(3) == [1, 9, 25]
    assert list(base.batch(4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert list(LocalIterator([[1, 2], [3]]).flatten()) == [1, 2, 3]
    assert list(LocalIterator(range(3)).combine(lambda x: [x] * x)) == [1, 2, 2]
    shuffled = list(LocalIterator(range(50)).shuffle(10, seed=1))
    assert sorted(shuffled) == list(range(50)) and shuffled != list(range(50))
    assert list(LocalIterator([1, 2, 3]).union(LocalIterator("ab"))) == [1, "a", 2, "b", 3]


def test_local_iterator_take_continues_and_derivations_restart() -> None:
    it = LocalIterator(range(10))
    assert it.take(3) == [0, 1, 2]
    assert it.take(3) == [3, 4, 5]
    assert it.filter(lambda x: x % 2 == 0).take(3) == [0, 2, 4]
    assert next(it) == 6


def test_local_iterator_is_lazy() -> None:
    calls: list[int] = []
    it = LocalIterator(range(5)).for_each(lambda x: calls.append(x) or x)
    assert calls == []
    assert next(it) == 0 and calls == [0]


def test_local_iterator_pickles_only_before_reading() -> None:
    it = LocalIterator(range(3)).batch(2)
    assert list(pickle.loads(pickle.dumps(it))) == [[0, 1], [2]]
    next(it)
    with pytest.raises(TypeError, match="already started"):
        pickle.dumps(it)


def test_show_prints_items(capsys: pytest.CaptureFixture[str]) -> None:
    par_iter.from_range(4, num_shards=2).show(3)
    LocalIterator(range(3)).show()
    assert capsys.readouterr().out.split() == ["0", "2", "1", "0", "1", "2"]

"""Connecting to a running cluster: the same user on the same machine needs only the
address; two clusters on one machine keep their tokens apart; token files are private."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import pytest

import nebula
from nebula import _auth, _config
from nebula.testing import Cluster


@pytest.fixture(autouse=True)
def no_token_in_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(_auth.TOKEN_ENV, raising=False)
    yield


@nebula.remote
def square(x: int) -> int:
    return x * x


def test_a_driver_connects_to_a_test_cluster_by_address_alone() -> None:
    with Cluster() as cluster:
        cluster.add_node(num_cpus=1)
        nebula.init(address=cluster.address)
        try:
            assert nebula.get(square.remote(7), timeout=30) == 49
        finally:
            nebula.shutdown()


def test_two_clusters_on_one_machine_keep_their_tokens_apart() -> None:
    with Cluster() as first, Cluster() as second:
        first.add_node(num_cpus=1)
        second.add_node(num_cpus=1, resources={"second": 1})
        assert first.token != second.token
        for cluster, expected in ((second, 1.0), (first, None)):
            nebula.init(address=cluster.address)
            try:
                assert nebula.cluster_resources().get("second") == expected
                assert nebula.get(square.remote(3), timeout=30) == 9
            finally:
                nebula.shutdown()


def test_token_files_are_readable_by_their_user_only() -> None:
    with Cluster() as cluster:
        path = _auth.token_path_for(_config.TEMP_DIR, cluster.address)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        with open(path) as f:
            assert f.read() == cluster.token
    assert not os.path.exists(path)


def test_a_wrong_token_in_the_environment_is_refused_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Cluster() as cluster:
        cluster.add_node(num_cpus=1)
        monkeypatch.setenv(_auth.TOKEN_ENV, _auth.new_token())
        with pytest.raises(ConnectionError):
            nebula.init(address=cluster.address)
        assert not nebula.is_initialized()

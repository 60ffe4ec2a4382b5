"""nebula.util.kv: a library's state kept by the control store, across a head restart."""

from __future__ import annotations

import pytest

import nebula
from nebula.testing import Cluster
from nebula.util import kv

pytestmark = pytest.mark.timeout(60)


@nebula.remote
def read(key: str) -> bytes | None:
    return kv.get(key)


def test_values_are_shared_kept_across_a_head_restart_and_not_overwritten_on_request() -> None:
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 1}, connect=True) as cluster:
        assert kv.get("lib:missing") is None
        assert kv.put("lib:state", b"one")
        assert nebula.get(read.remote("lib:state")) == b"one"  # from another process
        assert not kv.put("lib:state", b"two", overwrite=False)
        assert kv.put("lib:state", b"three")
        cluster.restart_control_store()
        assert kv.get("lib:state") == b"three"
        with pytest.raises(TypeError, match="bytes"):
            kv.put("lib:state", "text")  # type: ignore[arg-type]

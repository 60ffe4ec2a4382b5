"""The dashboard's JSON API and Prometheus endpoint on a live local cluster, user metrics
summed over processes, and init without the dashboard's dependencies."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import nebula
from nebula.testing import wait_for_condition
from nebula.util import state

pytest.importorskip("starlette", reason="the dashboard extra (nebula-core[dashboard]) is needed")
pytest.importorskip("prometheus_client", reason="the dashboard extra is needed")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    context = nebula.init(num_cpus=2, include_dashboard=True)
    try:
        found = nebula.get_runtime_context().dashboard_url
        assert found is not None and found == context.dashboard_url
        yield found
    finally:
        nebula.shutdown()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
        kind = response.headers.get("content-type", "")
    return json.loads(body) if "json" in kind else body.decode()


@nebula.remote
def record(i: int) -> int:
    from nebula.util.metrics import Counter, Gauge, Histogram

    Counter("items_done", description="items processed", tag_keys=("stage",)).inc(
        tags={"stage": "parse"}
    )
    Histogram("item_seconds", boundaries=[0.01, 1.0]).observe(0.001 * i)
    Gauge("last_item").set(i)
    time.sleep(0.05)
    return i


def test_the_api_serves_the_records_the_state_api_returns(url: str) -> None:
    nebula.get([record.remote(i) for i in range(4)])
    wait_for_condition(
        lambda: (
            len(state.list_tasks(filters=[("name", "=", "record"), ("state", "=", "FINISHED")]))
            == 4
        )
    )
    listed = _get(f"{url}/api/v0/tasks?filter=name=record&limit=10")
    assert listed["total"] == 4
    assert {t["task_id"] for t in listed["result"]} == {
        t.task_id for t in state.list_tasks(filters=[("name", "=", "record")])
    }
    one = listed["result"][0]["task_id"]
    assert _get(f"{url}/api/v0/tasks/{one}")[0]["task_id"] == one
    summary = _get(f"{url}/api/v0/tasks/summarize")
    assert summary["cluster"]["summary"]["record"]["state_counts"] == {"FINISHED": 4}
    nodes = _get(f"{url}/api/v0/nodes")["result"]
    assert [n["node_id"] for n in nodes] == [n.node_id for n in state.list_nodes()]
    status = _get(f"{url}/api/cluster_status")
    assert status["nodes"][0]["store"]["capacity"] > 0
    assert _get(f"{url}/api/v0/workers?detail=1")["total"] >= 2
    # A worker reports when an attempt started on its own, after the owner has seen it end.
    wait_for_condition(
        lambda: any(
            e["ph"] == "X" and e["name"] == "record" for e in _get(f"{url}/api/v0/timeline")
        )
    )
    with pytest.raises(urllib.error.HTTPError) as bad:
        _get(f"{url}/api/v0/tasks?filter=colour=red")
    assert bad.value.code == 400
    wait_for_condition(lambda: bool(_get(f"{url}/api/cluster_status/history")["samples"]))


def test_metrics_endpoint_has_cluster_gauges_and_user_metrics(url: str) -> None:
    nebula.get([record.remote(i) for i in range(6)])

    def scraped() -> str:
        return str(_get(f"{url}/metrics"))

    wait_for_condition(lambda: 'items_done_total{stage="parse"} 10.0' in scraped(), timeout=20)
    text = scraped()
    for line in (
        'nebula_cluster_nodes{state="ALIVE"} 1.0',
        "nebula_resources_total{",
        "nebula_object_store_capacity_bytes{",
        'nebula_tasks{state="FINISHED"}',
        "nebula_workers{",
        "item_seconds_count 10.0",
        'item_seconds_bucket{le="0.01"} 10.0',
        "last_item ",
    ):
        assert line in text, line


def test_metrics_check_their_tags() -> None:
    from nebula.util.metrics import Counter, Gauge

    counter = Counter("checked", tag_keys=("route",))
    with pytest.raises(ValueError, match="needs a value for tag"):
        counter.inc()
    with pytest.raises(ValueError, match="not among them"):
        counter.inc(tags={"colour": "red"})
    with pytest.raises(ValueError, match="only goes up"):
        counter.set_default_tags({"route": "/"}).inc(-1)
    with pytest.raises(ValueError, match="already exists"):
        Gauge("checked")


def test_init_says_how_to_get_the_dashboard_when_it_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nebula._api import runtime
    from nebula._dashboard import launch

    monkeypatch.setattr(launch, "available", lambda: False)
    monkeypatch.setenv("NEBULA_INCLUDE_DASHBOARD", "1")
    assert runtime._dashboard_wanted(None, "127.0.0.1", None) is None
    assert runtime._dashboard_wanted(True, "127.0.0.1", None) is None
    state_without = runtime.Runtime(core_worker=None, is_driver=True, namespace="")  # type: ignore[arg-type]
    runtime._announce(state_without, None)
    assert "pip install 'nebula-core[dashboard]'" in capsys.readouterr().err
    monkeypatch.setattr(launch, "available", lambda: True)
    assert runtime._dashboard_wanted(None, "127.0.0.1", None) == ("127.0.0.1", 8265)
    monkeypatch.setenv("NEBULA_INCLUDE_DASHBOARD", "0")
    assert runtime._dashboard_wanted(None, "127.0.0.1", None) is None

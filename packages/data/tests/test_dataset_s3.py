"""Reading and writing datasets on S3, against a local S3-compatible server (moto).

The tasks that read and write run in worker processes, so these tests also check that an
explicit ``S3FileSystem`` travels to them and that a bare URI resolves there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import nebula.data as nd
import pyarrow.fs as pafs
import pytest

import nebula

moto_server = pytest.importorskip(
    "moto.server", reason="needs moto[server] (requirements-dev.txt)", exc_type=ImportError
)

BUCKET = "nebula-test"
REGION = "us-east-1"
ACCESS_KEY = "testing-key"
SECRET_KEY = "testing-secret"


@dataclass(frozen=True)
class S3:
    endpoint: str  # host:port
    filesystem: pafs.S3FileSystem

    def uri(self, key: str) -> str:
        """A URI that carries the whole connection, for calls without ``filesystem=``."""
        return (
            f"s3://{ACCESS_KEY}:{SECRET_KEY}@{BUCKET}/{key}"
            f"?endpoint_override={self.endpoint}&scheme=http&region={REGION}"
        )

    def keys(self, prefix: str) -> list[str]:
        selector = pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=True)
        return sorted(info.path for info in self.filesystem.get_file_info(selector))


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"{host}:{port}"
        admin = pafs.S3FileSystem(
            endpoint_override=endpoint,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            scheme="http",
            region=REGION,
            allow_bucket_creation=True,
        )
        admin.create_dir(BUCKET)
        filesystem = pafs.S3FileSystem(
            endpoint_override=endpoint,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            scheme="http",
            region=REGION,
        )
        yield S3(endpoint, filesystem)
    finally:
        server.stop()


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    nebula.init(num_cpus=2)
    yield
    nebula.shutdown()


def test_parquet_round_trip_with_an_s3_filesystem(s3: S3) -> None:
    ds = nd.range(60, parallelism=3).map(lambda r: {"id": r["id"], "name": f"row-{r['id']}"})
    ds.write_parquet(f"s3://{BUCKET}/out", filesystem=s3.filesystem)

    keys = s3.keys("out")
    assert len(keys) == 3
    assert all(key.startswith(f"{BUCKET}/out/") and key.endswith(".parquet") for key in keys)

    back = nd.read_parquet(f"s3://{BUCKET}/out", filesystem=s3.filesystem)
    assert back.take_all() == [{"id": i, "name": f"row-{i}"} for i in range(60)]


def test_uri_without_filesystem_resolves_in_the_tasks(s3: S3) -> None:
    nd.range(40, parallelism=4).write_csv(s3.uri("csv"), min_rows_per_file=20)
    assert len(s3.keys("csv")) == 2
    assert [r["id"] for r in nd.read_csv(s3.uri("csv/*.csv")).take_all()] == list(range(40))

    nd.from_items([{"line": "hello"}, {"line": "world"}]).write_json(s3.uri("json"))
    rows = nd.read_text(s3.uri("json"), include_paths=True).take_all()
    assert [r["text"] for r in rows] == ['{"line":"hello"}', '{"line":"world"}']
    assert all(r["path"].startswith(f"{BUCKET}/json/") for r in rows)


def test_missing_s3_prefix_names_the_path(s3: S3) -> None:
    with pytest.raises(FileNotFoundError, match="no-such-prefix"):
        nd.read_parquet(f"s3://{BUCKET}/no-such-prefix", filesystem=s3.filesystem)

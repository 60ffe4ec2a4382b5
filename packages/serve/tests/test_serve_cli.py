"""``nebula serve`` and config files in Ray Serve's shape."""

from __future__ import annotations

import argparse
import urllib.request
from pathlib import Path

import pytest
import yaml
from nebula.serve._cli import configure, deploy_config, import_application
from nebula.serve._cli import run as run_command

from nebula import serve
from nebula.plugins import command_registry

pytestmark = pytest.mark.timeout(120)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


def test_the_serve_command_is_registered_through_the_plugin_api() -> None:
    assert "serve" in command_registry()


def test_import_paths_take_applications_deployments_and_builders() -> None:
    assert import_application("_serve_cli_app:app").deployment.name == "Greeter"
    assert import_application("_serve_cli_app:Greeter").args == ()
    assert import_application("_serve_cli_app:build", {"greeting": "yo"}).args == ("yo",)
    with pytest.raises(AttributeError):
        import_application("_serve_cli_app:missing")


def test_deploy_a_config_file(serve_cluster: str, tmp_path: Path) -> None:
    config = {
        "applications": [
            {"name": "plain", "route_prefix": "/plain", "import_path": "_serve_cli_app:app"},
            {
                "name": "built",
                "route_prefix": "/built",
                "import_path": "_serve_cli_app:build",
                "args": {"greeting": "from args"},
                "deployments": [
                    {"name": "Greeter", "num_replicas": 2, "user_config": {"greeting": "cfg"}}
                ],
            },
        ]
    }
    assert deploy_config(config) == ["plain", "built"]
    assert fetch(f"{serve_cluster}/plain") == b"hello"
    assert fetch(f"{serve_cluster}/built") == b"cfg"
    status = serve.status().applications["built"].deployments["Greeter"]
    assert status.replica_states == {"RUNNING": 2}
    duplicate = {"applications": [config["applications"][0], config["applications"][0]]}
    with pytest.raises(ValueError, match="more than once"):
        deploy_config(duplicate)


def test_status_and_deploy_commands(
    serve_cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "applications": [
                    {"name": "cmd", "route_prefix": "/cmd", "import_path": "_serve_cli_app:app"}
                ]
            }
        )
    )
    parser = argparse.ArgumentParser()
    configure(parser)
    assert run_command(parser.parse_args(["deploy", str(path)])) == 0
    assert fetch(f"{serve_cluster}/cmd") == b"hello"
    assert run_command(parser.parse_args(["status"])) == 0
    printed = yaml.safe_load(capsys.readouterr().out.split("\n", 1)[1])
    assert printed["applications"]["cmd"]["status"] == "RUNNING"

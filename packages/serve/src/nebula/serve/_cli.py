"""``nebula serve run|deploy|status|shutdown``, and config files in Ray Serve's shape.

A config file::

    http_options: {host: 127.0.0.1, port: 8000}
    applications:
      - name: default
        route_prefix: /
        import_path: my_module:app      # an Application, or a builder taking `args`
        args: {}
        deployments:
          - name: Model
            num_replicas: 2
            user_config: {threshold: 0.5}
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import time
from typing import Any

import yaml
from nebula.serve._deployment import Application

import nebula


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="serve_command", required=True)
    run = sub.add_parser("run", help="deploy an application (module:app or a config file)")
    run.add_argument("target", help="module:attribute of an application, or a YAML config")
    run.add_argument("--name", default="default")
    run.add_argument("--route-prefix", default="/")
    run.add_argument("--host", default=None)
    run.add_argument("--port", type=int, default=None)
    run.add_argument("--non-blocking", action="store_true", help="return once it runs")
    deploy = sub.add_parser("deploy", help="deploy the applications of a config file")
    deploy.add_argument("config")
    sub.add_parser("status", help="print the applications and their deployments")
    sub.add_parser("shutdown", help="delete every application and stop serve")
    for command in (run, deploy, *sub.choices.values()):
        if not any(a.dest == "address" for a in command._actions):
            command.add_argument("--address", default=None, help="HOST:PORT of the cluster")


def run(args: argparse.Namespace) -> int | None:
    import nebula.serve as serve

    sys.path.insert(0, ".")
    _connect(args.address, start_local=args.serve_command == "run")
    if args.serve_command == "status":
        print(yaml.safe_dump(_status_dict(serve.status()), sort_keys=False), end="")
        return 0
    if args.serve_command == "shutdown":
        serve.shutdown()
        print("serve is shut down.")
        return 0
    if args.serve_command == "deploy":
        names = deploy_config(_load_yaml(args.config))
        print(f"Deployed {', '.join(names)}.")
        return 0
    if args.target.endswith((".yaml", ".yml")):
        names = deploy_config(_load_yaml(args.target), host=args.host, port=args.port)
    else:
        http = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        serve.start(http_options=http or None)
        serve.run(import_application(args.target), name=args.name, route_prefix=args.route_prefix)
        names = [args.name]
    print(f"Running {', '.join(names)}.", flush=True)
    if args.non_blocking:
        return 0
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        serve.shutdown()
    return 0


def _connect(address: str | None, *, start_local: bool) -> None:
    if nebula.is_initialized():
        return
    if address is not None:
        nebula.init(address=address)
        return
    try:
        nebula.init(address="auto")
    except (ConnectionError, ValueError, RuntimeError, OSError):
        if not start_local:
            raise
        nebula.init()


def _load_yaml(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as file:
        data = yaml.safe_load(file) or {}
    if not isinstance(data, dict) or not isinstance(data.get("applications", []), list):
        raise ValueError(f"{path} is not a serve config: it needs a list of `applications`.")
    return data


def import_application(import_path: str, args: dict[str, Any] | None = None) -> Application:
    """The application at ``module:attribute`` (a builder is called with ``args``)."""
    module_name, _, attribute = import_path.replace("/", ".").partition(":")
    if not attribute:
        module_name, _, attribute = import_path.rpartition(".")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if callable(target) and not isinstance(target, Application) and not hasattr(target, "bind"):
        target = target(args or {})
    if hasattr(target, "bind") and not isinstance(target, Application):
        target = target.bind()
    if not isinstance(target, Application):
        raise TypeError(f"{import_path} is not an application (Deployment.bind(...)).")
    return target


def deploy_config(
    config: dict[str, Any], *, host: str | None = None, port: int | None = None
) -> list[str]:
    """Deploy every application of a config file; returns their names."""
    import nebula.serve as serve

    http = dict(config.get("http_options") or {})
    if host is not None:
        http["host"] = host
    if port is not None:
        http["port"] = port
    serve.start(http_options=http or None, proxy_location=config.get("proxy_location", "HeadOnly"))
    apps = config.get("applications", [])
    names = [app.get("name", "default") for app in apps]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"The config names application(s) {sorted(duplicates)} more than once.")
    for app in apps:
        application = import_application(app["import_path"], app.get("args"))
        overrides = {d["name"]: d for d in app.get("deployments", [])}
        _apply_overrides(application, overrides)
        serve.run(
            application,
            name=app.get("name", "default"),
            route_prefix=app.get("route_prefix", "/"),
        )
    return names


def _apply_overrides(app: Application, overrides: dict[str, dict[str, Any]]) -> None:
    seen: set[int] = set()

    def visit(node: Any) -> None:
        if isinstance(node, Application):
            if id(node) in seen:
                return
            seen.add(id(node))
            options = overrides.get(node.deployment.name)
            if options:
                node.deployment = node.deployment.options(
                    **{k: v for k, v in options.items() if k != "name"}
                )
            for value in (*node.args, *node.kwargs.values()):
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)
        elif isinstance(node, dict):
            for value in node.values():
                visit(value)

    visit(app)


def _status_dict(status: Any) -> dict[str, Any]:
    return {
        "proxies": status.proxies,
        "applications": {
            name: {
                k: v
                for k, v in dataclasses.asdict(app).items()
                if k in ("status", "message", "route_prefix", "deployments")
            }
            for name, app in status.applications.items()
        },
    }

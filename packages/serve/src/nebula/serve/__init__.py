"""nebula.serve: HTTP model serving on Nebula, with Ray Serve's API.

Deploy a class or function as replicas behind an HTTP proxy, compose deployments through
handles, batch requests, and scale with the load::

    from nebula import serve

    @serve.deployment
    class Hello:
        def __call__(self, request):
            return "hello"

    serve.run(Hello.bind())   # http://127.0.0.1:8000/
"""

from __future__ import annotations

from nebula.serve import config, exceptions
from nebula.serve._api import (
    ApplicationStatusOverview,
    DeploymentStatusOverview,
    ServeStatus,
    delete,
    get_app_handle,
    get_deployment_handle,
    run,
    shutdown,
    start,
    status,
)
from nebula.serve._context import ReplicaContext, get_replica_context
from nebula.serve._deployment import Application, Deployment, deployment
from nebula.serve._ingress import ingress
from nebula.serve.batching import batch
from nebula.serve.config import AutoscalingConfig, DeploymentConfig, HTTPOptions, ProxyLocation
from nebula.serve.handle import DeploymentHandle, DeploymentResponse, DeploymentResponseGenerator

__all__ = [
    "Application",
    "ApplicationStatusOverview",
    "AutoscalingConfig",
    "Deployment",
    "DeploymentConfig",
    "DeploymentHandle",
    "DeploymentResponse",
    "DeploymentResponseGenerator",
    "DeploymentStatusOverview",
    "HTTPOptions",
    "ProxyLocation",
    "ReplicaContext",
    "ServeStatus",
    "batch",
    "config",
    "delete",
    "deployment",
    "exceptions",
    "get_app_handle",
    "get_deployment_handle",
    "get_replica_context",
    "ingress",
    "run",
    "shutdown",
    "start",
    "status",
]

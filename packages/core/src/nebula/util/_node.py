"""The address of the node this process runs on."""

from __future__ import annotations

import socket


def get_node_ip_address(address: str | None = None) -> str:
    """The IP address of this process's node as the cluster knows it; before ``init``,
    the address this machine uses to reach ``address`` (host:port, default a public
    address; no packet is sent)."""
    import nebula

    if address is None and nebula.is_initialized():
        node_id = nebula.get_runtime_context().get_node_id()
        for node in nebula.nodes():
            if node["NodeID"] == node_id:
                return str(node["NodeManagerAddress"])
    host, _, port = (address or "8.8.8.8:53").rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, int(port)))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"

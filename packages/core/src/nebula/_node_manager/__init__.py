"""The node manager process: resources, worker leases, the node's object store."""

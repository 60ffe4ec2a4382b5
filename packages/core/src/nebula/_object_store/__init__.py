"""The node's shared-memory object store."""

"""The user-facing layer: remote functions, actors, refs and the runtime's global state."""

"""The control store process (head node only)."""

"""The core worker (driver and worker processes) and the worker process entry point."""

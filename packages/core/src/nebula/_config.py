"""Tunables, each overridable by a ``NEBULA_<NAME>`` environment variable."""

from __future__ import annotations

import os
import tempfile


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(f"NEBULA_{name}")
    return float(value) if value else default


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(f"NEBULA_{name}")
    return int(value) if value else default


# Values at most this large travel inline in messages and live in the owner's memory;
# larger ones go to the node's shared-memory store.
INLINE_OBJECT_MAX_BYTES = _env_int("INLINE_OBJECT_MAX_BYTES", 100 * 1024)
# An idle lease is kept this long so that a burst of tasks does not re-lease per task.
LEASE_IDLE_TIMEOUT_S = _env_float("LEASE_IDLE_TIMEOUT_S", 0.2)
# How long tasks wait for a lease before the process gives back its idle leases of other
# scheduling classes, rather than keeping them LEASE_IDLE_TIMEOUT_S.
LEASE_RECLAIM_S = _env_float("LEASE_RECLAIM_S", 0.03)
# How many lease requests one scheduling class may have outstanding at once.
MAX_PENDING_LEASES_PER_CLASS = _env_int("MAX_PENDING_LEASES_PER_CLASS", 16)
# Drivers tell the control store they are alive this often; a silent driver's job ends
# after DRIVER_TIMEOUT_S.
DRIVER_HEARTBEAT_S = _env_float("DRIVER_HEARTBEAT_S", 1.0)
DRIVER_TIMEOUT_S = _env_float("DRIVER_TIMEOUT_S", 30.0)
NODE_HEARTBEAT_S = _env_float("NODE_HEARTBEAT_S", 1.0)
# A node silent this long is declared dead: its actors die and its leases are failed.
NODE_TIMEOUT_S = _env_float("NODE_TIMEOUT_S", 10.0)
# The cluster view node managers hold is kept current by deltas answering their heartbeats:
# at most VIEW_DELTA_MAX_AVAILABLE nodes' latest changes of free resources in one, plus
# VIEW_DELTA_SWEEP others in turn (so a large cluster's view is refreshed within
# nodes / VIEW_DELTA_SWEEP heartbeats). Clusters of at most VIEW_PUSH_MAX_NODES nodes are
# also sent each join or death at once; larger ones learn it at their next heartbeat. One
# encoding of the full view serves every node asking for it within VIEW_SNAPSHOT_REUSE_S.
VIEW_DELTA_MAX_AVAILABLE = _env_int("VIEW_DELTA_MAX_AVAILABLE", 32)
VIEW_DELTA_SWEEP = _env_int("VIEW_DELTA_SWEEP", 16)
VIEW_PUSH_MAX_NODES = _env_int("VIEW_PUSH_MAX_NODES", 64)
VIEW_SNAPSHOT_REUSE_S = _env_float("VIEW_SNAPSHOT_REUSE_S", 0.25)
# How long a process may take to start and report ready before start-up fails.
PROCESS_START_TIMEOUT_S = _env_float("PROCESS_START_TIMEOUT_S", 30.0)
# Default share of the machine's memory given to a node's object store.
OBJECT_STORE_MEMORY_FRACTION = _env_float("OBJECT_STORE_MEMORY_FRACTION", 0.3)
# Maximum number of workers a node starts at the same time.
# How long a write (or a restore) waits for room held by objects still being written before
# it fails with ObjectStoreFullError; sealed objects are spilled to make room at once.
OBJECT_STORE_FULL_WAIT_S = _env_float("OBJECT_STORE_FULL_WAIT_S", 120.0)
# For tests only: each chunk a spill or restore copies waits this long first, as on a disk
# with gigabytes of dirty pages queued (the node must keep serving meanwhile).
SPILL_CHUNK_DELAY_S = _env_float("SPILL_CHUNK_DELAY_S", 0.0)
MAX_STARTING_WORKERS = _env_int("MAX_STARTING_WORKERS", 4)
# Fork workers from a process that has already imported Nebula (0: start each worker as a
# new interpreter, as on platforms without fork).
FORK_WORKERS = _env_int("FORK_WORKERS", 1) != 0
# Shared-memory files live here; /dev/shm is RAM-backed on Linux.
SHM_DIR = os.environ.get("NEBULA_SHM_DIR") or (
    "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
)
# Session folders (logs, address files).
TEMP_DIR = os.environ.get("NEBULA_TEMP_DIR") or os.path.join(tempfile.gettempdir(), "nebula")
DEFAULT_HEAD_PORT = _env_int("DEFAULT_HEAD_PORT", 6380)
DEFAULT_MAX_RETRIES = 3
# How long the control store waits for an actor it has not heard of to be created before
# telling processes holding a handle to it that it is unknown.
UNKNOWN_ACTOR_WAIT_S = _env_float("UNKNOWN_ACTOR_WAIT_S", 10.0)
# A process waiting for a borrowed value pings its owner this often, and gives the value up
# as lost when the owner has not answered for OWNER_TIMEOUT_S.
OWNER_PING_S = _env_float("OWNER_PING_S", 1.0)
OWNER_TIMEOUT_S = _env_float("OWNER_TIMEOUT_S", 10.0)
# Objects between nodes travel over an authenticated but unencrypted TCP path, with
# sendfile (fast); 1: as encrypted messages instead, for clusters on untrusted networks.
ENCRYPT_OBJECT_TRANSFERS = _env_int("ENCRYPT_OBJECT_TRANSFERS", 0) != 0
# An object of at least OBJECT_TRANSFER_SPLIT_BYTES comes over this many connections at once,
# each bringing one range of it (from different nodes when several hold it).
OBJECT_TRANSFER_STREAMS = _env_int("OBJECT_TRANSFER_STREAMS", 2)
OBJECT_TRANSFER_SPLIT_BYTES = _env_int("OBJECT_TRANSFER_SPLIT_BYTES", 32 * 1024 * 1024)
# A node serves one object to at most this many readers at once; more wait for the copies
# those make and pull from them (a broadcast spreads as a tree).
OBJECT_TRANSFER_PULLS_PER_HOLDER = _env_int("OBJECT_TRANSFER_PULLS_PER_HOLDER", 2)
# The largest message a process accepts; values this big travel through shared memory.
MAX_MESSAGE_BYTES = _env_int("MAX_MESSAGE_BYTES", 256 * 1024 * 1024)
# A call whose arguments (passed by value) take more than this goes with them in the
# node's shared-memory store instead of inline in the message.
ARGS_INLINE_MAX_BYTES = _env_int("ARGS_INLINE_MAX_BYTES", 10 * 1024 * 1024)
# A task's small return values travel in messages of at most this many bytes each, so
# that num_returns=10_000 never makes its reply too large.
RETURNS_INLINE_MAX_BYTES = _env_int("RETURNS_INLINE_MAX_BYTES", 64 * 1024 * 1024)
# The most tasks one process may have submitted and not yet finished (0: no bound), and
# what a submission past it does: "block" (wait until one finishes: back-pressure) or
# "error" (raise PendingCallsLimitExceeded at once). Read at each submission.
MAX_QUEUED_TASKS = _env_int("MAX_QUEUED_TASKS", 0)
QUEUED_TASKS_FULL = os.environ.get("NEBULA_QUEUED_TASKS_FULL", "block")
# The most values one task may return (num_returns): each costs a reference in its reply.
MAX_NUM_RETURNS = _env_int("MAX_NUM_RETURNS", 100_000)
# How long an actor that called exit_actor() waits to be killed before exiting by itself.
EXIT_ACTOR_WAIT_S = _env_float("EXIT_ACTOR_WAIT_S", 10.0)
# Task events (the record behind nebula.util.state.list_tasks and the dashboard): whether
# processes record them, how often they flush them to the control store, how many one
# process buffers between flushes, and how many task attempts the control store keeps per
# job (the oldest finished ones go first).
TASK_EVENTS_ENABLED = _env_int("TASK_EVENTS_ENABLED", 1) != 0
TASK_EVENTS_FLUSH_S = _env_float("TASK_EVENTS_FLUSH_S", 1.0)
TASK_EVENTS_MAX_BUFFERED = _env_int("TASK_EVENTS_MAX_BUFFERED", 100_000)
TASK_EVENTS_MAX_PER_JOB = _env_int("TASK_EVENTS_MAX_PER_JOB", 10_000)


def include_dashboard() -> bool:
    """Whether a local cluster starts a dashboard (when installed) unless told otherwise;
    read when asked, so a test suite can turn it off after importing Nebula."""
    return _env_int("INCLUDE_DASHBOARD", 1) != 0

"""``nebula job submit|status|logs|stop|list``: jobs over the dashboard's job API (the same
routes as Ray's, through ``nebula.job_submission.JobSubmissionClient``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from nebula._cli.format import print_json, print_table


def configure_job(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="job_command", required=True)

    def with_address(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--address",
            default=None,
            help="the dashboard, http://HOST:8265 (default: NEBULA_ADDRESS if it is http, "
            "else this machine's cluster)",
        )
        return p

    submit = with_address(sub.add_parser("submit", help="run a command on the cluster"))
    submit.add_argument("--working-dir", help="a directory to upload and run the job in")
    submit.add_argument("--runtime-env-json", help="the runtime_env, e.g. '{\"env_vars\": {}}'")
    submit.add_argument("--submission-id", help="the job's id (default: a new one)")
    submit.add_argument("--metadata-json", help="string pairs kept with the job")
    submit.add_argument("--no-wait", action="store_true", help="do not follow its output")
    submit.add_argument("entrypoint", nargs=argparse.REMAINDER, help="-- command to run")
    for name, text in (
        ("status", "the job's status"),
        ("logs", "the job's output"),
        ("stop", "stop a running job"),
    ):
        command = with_address(sub.add_parser(name, help=text))
        command.add_argument("job_id")
        if name == "logs":
            command.add_argument("--follow", "-f", action="store_true")
        if name == "stop":
            command.add_argument("--no-wait", action="store_true")
    listing = with_address(sub.add_parser("list", help="every job of the cluster"))
    listing.add_argument("--format", choices=("table", "json"), default="table")


def run_job(args: argparse.Namespace) -> int:
    from nebula.job_submission import JobSubmissionClient

    client = JobSubmissionClient(args.address)
    return int(_COMMANDS[args.job_command](client, args))


def _submit(client: Any, args: argparse.Namespace) -> int:
    entrypoint = list(args.entrypoint)
    if entrypoint[:1] == ["--"]:
        entrypoint = entrypoint[1:]
    if not entrypoint:
        raise ValueError("say what to run after --, like: nebula job submit -- python run.py")
    runtime_env: dict[str, Any] = json.loads(args.runtime_env_json or "{}")
    if args.working_dir:
        runtime_env["working_dir"] = args.working_dir
    import shlex

    submission_id = client.submit_job(
        entrypoint=shlex.join(entrypoint) if len(entrypoint) > 1 else entrypoint[0],
        runtime_env=runtime_env or None,
        submission_id=args.submission_id,
        metadata=json.loads(args.metadata_json or "{}"),
    )
    print(f"Job '{submission_id}' submitted to {client.address}.", file=sys.stderr)
    if args.no_wait:
        print(f"Follow it with: nebula job logs --follow {submission_id}", file=sys.stderr)
        return 0
    return _follow(client, submission_id)


def _follow(client: Any, submission_id: str) -> int:
    for chunk in client.iter_job_logs(submission_id):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    info = client.get_job_info(submission_id)
    print(f"Job '{submission_id}' {info['status'].lower()}: {info['message']}", file=sys.stderr)
    return 0 if info["status"] == "SUCCEEDED" else 1


def _status(client: Any, args: argparse.Namespace) -> int:
    info = client.get_job_info(args.job_id)
    print(f"{info['status']}: {info['message']}")
    return 0


def _logs(client: Any, args: argparse.Namespace) -> int:
    if args.follow:
        _follow(client, args.job_id)
        return 0
    sys.stdout.write(client.get_job_logs(args.job_id))
    return 0


def _stop(client: Any, args: argparse.Namespace) -> int:
    if not client.stop_job(args.job_id):
        print(f"Job '{args.job_id}' was not running.")
        return 0
    if not args.no_wait:
        while not client.get_job_status(args.job_id).is_terminal():
            time.sleep(0.2)
    print(f"Job '{args.job_id}' stopped.")
    return 0


def _list(client: Any, args: argparse.Namespace) -> int:
    jobs = client.list_jobs()
    if args.format == "json":
        print_json([dict(j) for j in jobs])
        return 0
    print_table(jobs, ("submission_id", "job_id", "type", "status", "entrypoint"))
    return 0


_COMMANDS = {"submit": _submit, "status": _status, "logs": _logs, "stop": _stop, "list": _list}

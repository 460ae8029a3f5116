"""`sluice up` serves the local cloud to other processes, like the aws CLI or `sluice`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from sluice.cli import local_cloud_setup
from sluice.config import PROJECT_ROOT
from tests.support import assert_unknown_keys_refused, eventually

OPERATIONS = PROJECT_ROOT / "docs" / "operations.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connects(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def shell(lines: list[str], command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `command` in bash after the lines `sluice up` printed, as a user pastes them."""
    script = "\n".join([*lines, command])
    return subprocess.run(
        ["bash", "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )


def test_the_docs_give_the_setup_lines_up_prints() -> None:
    # Given the lines `sluice up` prints for its default port, with the keys left out
    lines = local_cloud_setup(
        "http://127.0.0.1:4566",
        "us-east-1",
        {"AWS_ACCESS_KEY_ID": "<printed>", "AWS_SECRET_ACCESS_KEY": "<printed>"},
    )
    # Then docs/operations.md gives the same lines, in order, in one block
    text = OPERATIONS.read_text(encoding="utf-8")
    assert "\n".join(f"  {line}" for line in lines) in text


def test_up_serves_the_pipeline_once_provisioned_and_says_what_it_discards(
    tmp_path: Path,
) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # A user's own configuration, which the printed lines must override
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_PROFILE": "someone-else", "AWS_SESSION_TOKEN": "stale"})
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    server = subprocess.Popen(
        [sys.executable, "-m", "sluice.cli", "up", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # Given `sluice up` starting: a client that waits for the port, not for its output
        def listening() -> bool:
            assert server.poll() is None
            return connects(port)

        eventually(listening, 60, "sluice up listening")
        # Then the first call it makes finds the cloud whole: IAM already checks every call
        # (it is switched on last, once the stack is provisioned), so unknown keys are refused
        assert_unknown_keys_refused(endpoint)
        # and `up` says it is ready, then prints the lines that set a shell up
        assert server.stdout is not None
        assert server.stdout.readline() == (
            f"ready: local cloud at {endpoint} (stack Sluice-local); Ctrl-C stops it\n"
        )
        setup = [server.stdout.readline().strip() for _ in range(3)]
        keys = dict(pair.split("=", 1) for pair in setup[2].split()[1:])
        assert setup == local_cloud_setup(endpoint, "us-east-1", keys)
        # When the aws CLI puts a file into RAW from a shell set up by those lines
        data = tmp_path / "orders.jsonl"
        data.write_text('{"order_id": 1, "total": 3.5, "order_date": "2024-01-02"}\n')
        copied = shell(
            setup, f"aws s3 cp {data} s3://raw/orders/year=2026/month=11/day=29/orders.jsonl", env
        )
        assert copied.returncode == 0, copied.stderr

        # Then the pipeline runs, and `sluice executions list` in a third process sees it
        def finished() -> list[dict[str, str]] | None:
            listing = shell(setup, f"{sys.executable} -m sluice.cli executions list --json", env)
            rows: list[dict[str, str]] = json.loads(listing.stdout)
            return rows if rows and rows[0]["status"] != "RUNNING" else None

        rows: list[dict[str, str]] = eventually(finished, 120, "the execution finished", 0.2)
        assert [(r["status"], r["source_key"]) for r in rows] == [
            ("SUCCEEDED", "orders/year=2026/month=11/day=29/orders.jsonl")
        ]
        # When an empty file is uploaded with --wait
        empty = tmp_path / "orders_empty.csv"
        empty.write_text("")
        waited = shell(
            setup, f"{sys.executable} -m sluice.cli upload {empty} --dataset orders --wait", env
        )
        # Then it exits 1 with the failure in one line
        assert waited.returncode == 1
        assert re.fullmatch(
            r"orders_empty\.csv → s3://raw/orders/year=\d{4}/month=\d\d/day=\d\d/"
            r"orders_empty\.csv  execution orders-orders_empty-[0-9a-f]{16}  "
            r"FAILED at validate: EMPTY_FILE: file has no content\n",
            waited.stdout,
        )
        objects = sum(
            len(shell(setup, f"aws s3 ls --recursive s3://{bucket}/", env).stdout.splitlines())
            for bucket in ("raw", "trusted", "delivery", "quarantine")
        )
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=30)
    # And when it stops, it says what it discards: two executions, every object, one letter
    assert server.returncode == 0
    assert out.splitlines()[-1] == (
        f"stopping: discarding 2 execution(s) (0 still running), {objects} object(s) and "
        "1 queued message(s); the local cloud keeps no state"
    )

"""`sluice up` serves the local cloud to other processes, like the aws CLI or `sluice`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from sluice.config import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_up_serves_the_pipeline_to_other_processes(tmp_path: Path) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "sluice.cli", "up", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # Given the local cloud served by `sluice up`
        assert server.stdout is not None
        first = server.stdout.readline()
        assert first.startswith(f"local cloud up at {endpoint} (stack Sluice-local)")
        assert server.stdout.readline().split() == [
            "export",
            f"AWS_ENDPOINT_URL={endpoint}",
            "AWS_DEFAULT_REGION=us-east-1",
        ]
        # and the administrator's keys it prints: the cloud checks every call against IAM
        export, *pairs = server.stdout.readline().split()
        keys = dict(pair.split("=", 1) for pair in pairs)
        assert (export, sorted(keys)) == ("export", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
        stranger = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        with pytest.raises(ClientError) as refused:
            stranger.list_objects_v2(Bucket="raw")
        assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"
        # When another process puts a file into RAW with those keys, as `aws s3 cp` would
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        )
        s3.put_object(
            Bucket="raw",
            Key="orders/year=2026/month=11/day=29/orders.jsonl",
            Body=b'{"order_id": 1, "total": 3.5, "order_date": "2024-01-02"}\n',
        )
        # Then the pipeline runs, and `sluice executions` in a third process sees it
        deadline = time.monotonic() + 60
        rows: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            listing = subprocess.run(
                [sys.executable, "-m", "sluice.cli", "executions", "--json"],
                cwd=PROJECT_ROOT,
                env={**env, **keys, "AWS_ENDPOINT_URL": endpoint},
                capture_output=True,
                text=True,
                check=True,
            )
            rows = json.loads(listing.stdout)
            if rows and rows[0]["status"] != "RUNNING":
                break
            time.sleep(0.2)
        assert [(r["status"], r["source_key"]) for r in rows] == [
            ("SUCCEEDED", "orders/year=2026/month=11/day=29/orders.jsonl")
        ]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert server.returncode == 0

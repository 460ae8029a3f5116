"""`sluice upload`: files into RAW, and with `--wait` the outcome of their executions."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice import lake, ops
from sluice.cli.inputs import check_dataset, existing_files, key_clash
from sluice.cli.options import resolve_target
from sluice.cli.render import emit
from sluice.config import RUNNING, SUCCEEDED
from sluice.report import Failure


def cmd_upload(args: argparse.Namespace) -> int:
    paths = existing_files(args.files)
    dataset = args.dataset or lake.dataset_from_filename(paths[0].name)
    check_dataset(dataset)
    target = resolve_target(args)
    today = datetime.now(UTC).date()
    keys = [(p, lake.raw_key(dataset, p.name, today)) for p in paths]
    clash = key_clash(target.raw_bucket, keys)
    if clash:
        raise ops.UsageError(clash)
    if args.wait is None:
        items = ops.upload(target, paths, dataset, wait_seconds=ops.START_WAIT, today=today)
        lines = [
            f"{Path(i['file']).name} → s3://{i['bucket']}/{i['key']}  execution {i['execution']}"
            + ("" if i["started"] else " (not started yet)")
            for i in items
        ]
        emit(args, items, "\n".join(lines))
        return 0
    deadline = time.monotonic() + args.wait
    items = ops.upload(target, paths, dataset, wait_seconds=args.wait, today=today)
    ops.await_uploads(target, items, max(0.0, deadline - time.monotonic()))
    lines = [
        f"{Path(i['file']).name} → s3://{i['bucket']}/{i['key']}  execution {i['execution']}  "
        + _upload_result(i, args.wait)
        for i in items
    ]
    emit(args, items, "\n".join(lines))
    return 0 if all(i["outcome"] == SUCCEEDED for i in items) else 1


def _upload_result(item: dict[str, Any], wait_seconds: float) -> str:
    if item.get("failure"):
        return Failure(**item["failure"]).summary()
    if item["outcome"] == "NOT_STARTED":
        return f"not started after {wait_seconds:g} s"
    if item["outcome"] == RUNNING:
        return f"still running after {wait_seconds:g} s"
    return str(item["outcome"])

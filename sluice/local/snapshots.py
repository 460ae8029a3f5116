"""The lake as the local cloud holds it: its datasets, a copy of it on disk, and what
stopping the cloud throws away."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice import lake
from sluice.config import RUNNING, STAGING_PREFIX
from sluice.local import _moto
from sluice.local.provision import ACCOUNT
from sluice.local.runtime import LambdaRuntime


class LakeSnapshots:
    """What `LocalCloud` holds, read in place (the attributes are `LocalCloud`'s)."""

    buckets: dict[str, str]
    runtime: LambdaRuntime
    state_machine_arn: str
    queue_urls: dict[str, str]

    if TYPE_CHECKING:  # LocalCloud's

        def client(self, service: str, credentials: Mapping[str, str] | None = None) -> Any: ...

    def datasets(self) -> list[str]:
        """The datasets RAW holds objects of (the first folder of each key)."""
        found = {
            lake.dataset_from_key(key)
            for key, _ in _moto.stored_objects(ACCOUNT, self.buckets["raw"])
            if not key.startswith("_")
        }
        return sorted(d for d in found if lake.is_valid_dataset(d))

    def snapshot(self, directory: Path, datasets: Iterable[str] = ()) -> dict[str, int]:
        """Copy every bucket to `directory/<layer>/<key>`; files written per layer.

        What is replaced is each dataset's own part of the lake: for every dataset this cloud
        holds (and those named), its folder in each layer and its entries in the pipeline's
        folders (staging, partial summaries, summary states, lineage), and `_logs/`. Other
        datasets and anything else in `directory` are left as they are. A dataset is replaced
        whole, not file by file: its day summaries are this cloud's, so TRUSTED files of an
        earlier run kept beside them would not add up to them. A key that would leave its
        folder (`..`, absolute paths) is skipped, never written.
        """
        counts: dict[str, int] = {}
        replaced = sorted({*self.datasets(), *datasets})
        for layer, bucket in self.buckets.items():
            root = (directory / layer).resolve()
            for dataset in replaced:
                _remove_dataset(root, dataset)
            root.mkdir(parents=True, exist_ok=True)
            counts[layer] = 0
            for key, body in _moto.stored_objects(ACCOUNT, bucket):
                target = (root / key).resolve()
                if key.endswith("/") or not target.is_relative_to(root):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)
                counts[layer] += 1
        logs = directory / "_logs"
        if logs.exists():
            _remove_tree(logs)
        logs.mkdir(parents=True)
        for function, lines in self.runtime.logs.items():
            (logs / f"{function}.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return counts

    def discarded(self) -> dict[str, int]:
        """What stopping this cloud throws away: executions (and how many still run), objects
        in the buckets and messages in the queues. Nothing of it outlives the process."""
        sfn = self.client("stepfunctions")
        statuses = [
            e["status"]
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.state_machine_arn
            )
            for e in page["executions"]
        ]
        sqs = self.client("sqs")
        messages = 0
        for url in self.queue_urls.values():
            attrs = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            messages += sum(int(v) for v in attrs.values())
        return {
            "executions": len(statuses),
            "running": statuses.count(RUNNING),
            "objects": sum(
                1 for bucket in self.buckets.values() for _ in _moto.stored_objects(ACCOUNT, bucket)
            ),
            "messages": messages,
        }


# Where a dataset's files are, in each layer, besides its own folder: the pipeline's folders
# that keep one subfolder per dataset, and the lineage records named `<dataset>-...`.
_DATASET_FOLDERS = (
    STAGING_PREFIX,
    lake.PARTIALS_PREFIX,
    lake.LINEAGE_MANIFESTS,
)


def _remove_dataset(root: Path, dataset: str) -> None:
    """Remove a dataset's part of one layer folder (dataset names are `[a-z0-9_]`)."""
    for folder in ("", *_DATASET_FOLDERS):
        path = root / folder / dataset
        if path.is_dir() and not path.is_symlink():
            _remove_tree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    records = root / lake.LINEAGE_RECORDS
    if records.is_dir():
        for record in records.glob(f"{dataset}-*"):
            record.unlink()


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path)

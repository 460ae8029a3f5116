"""`sluice run`, `query` and `ddl`: the pipeline on the embedded local cloud, and its lake."""

from __future__ import annotations

import argparse
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice import lake, query
from sluice.cli.inputs import check_dataset, existing_files, key_clash
from sluice.cli.render import progress
from sluice.config import SUCCEEDED
from sluice.lake import SourceObject
from sluice.ops import UsageError
from sluice.report import ExecutionReport, build_report, execution_history
from sluice.state import DeliverySection, LineageManifest


@dataclass
class FileRun:
    path: Path
    dataset: str
    source: SourceObject
    report: ExecutionReport
    outputs: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "dataset": self.dataset,
            **self.report.to_dict(),
            "outputs": self.outputs,
        }


def _outputs(
    cloud: Any, run_source: SourceObject, dataset: str, report: ExecutionReport
) -> list[dict[str, Any]]:
    """Every object the execution wrote, from its lineage manifest or quarantine record."""
    s3 = cloud.client("s3")
    delivered = report.state.result("delivery") if report.state else None
    if isinstance(delivered, DeliverySection):
        lineage = delivered.lineage
        manifest = LineageManifest.from_dict(
            json.loads(s3.get_object(Bucket=lineage.bucket, Key=lineage.key)["Body"].read()),
            lineage.key,
        )
        layers = {v: k for k, v in cloud.buckets.items()}
        items: list[dict[str, Any]] = [
            {"layer": layers[o.bucket], "key": o.key, "rows": o.rows} for o in manifest.outputs
        ]
        items.append({"layer": "delivery", "key": lineage.key, "rows": None})
        return items
    prefix = lake.quarantine_file_prefix(dataset, run_source)
    listed = s3.list_objects_v2(Bucket=cloud.buckets["quarantine"], Prefix=prefix).get(
        "Contents", []
    )
    return [{"layer": "quarantine", "key": o["Key"], "rows": None} for o in listed]


def _print_report(run: FileRun) -> None:
    r = run.report
    print(f"{run.path.name}  →  s3://{run.source.bucket}/{run.source.key}")
    print(f"  execution  {r.name}  {r.status}")
    print(f"  {'stage':<10} {'status':<10} {'duration':>9} {'attempts':>9}")
    for stage in r.stages:
        duration = f"{stage.duration_ms} ms" if stage.status != "NOT_RUN" else "-"
        print(f"  {stage.name:<10} {stage.status:<10} {duration:>9} {stage.attempts:>9}")
    c = r.counts
    print(
        f"  rows       in {c['rows_in']} · trusted {c['rows_trusted']} · "
        f"quarantined {c['rows_quarantined']} · duplicates {c['duplicates']}"
    )
    failure = r.failure
    if failure:
        print(f"  error      {failure.stage or '?'}: {failure.reason}: {failure.message}")
    for i, out in enumerate(run.outputs):
        rows = f"  ({out['rows']} rows)" if out["rows"] is not None else ""
        print(f"  {'outputs' if i == 0 else '':<10} {out['layer']}/{out['key']}{rows}")
    print()


def cmd_run(args: argparse.Namespace) -> int:
    from sluice.local import LocalCloud

    paths = existing_files(args.files)
    if args.dataset:
        check_dataset(args.dataset)
    lake_dir = Path(args.lake)
    today = datetime.now(UTC).date()
    planned = [(path, args.dataset or lake.dataset_from_filename(path.name)) for path in paths]
    clash = key_clash("raw", [(path, lake.raw_key(d, path.name, today)) for path, d in planned])
    if clash:
        raise UsageError(clash)
    runs: list[FileRun] = []
    with LocalCloud(env=args.env, publish_stack=False) as cloud:
        progress(f"local cloud up at {cloud.endpoint_url} (env {cloud.environment.name})")
        uploads = []
        for path, dataset in planned:
            source = cloud.upload(path, dataset, day=today)
            progress(f"uploaded {path.name} → s3://{source.bucket}/{source.key}")
            uploads.append((path, dataset, source))
        sfn = cloud.client("stepfunctions")
        for path, dataset, source in uploads:
            description = cloud.wait(source, timeout=args.timeout)
            report = build_report(description, execution_history(sfn, description["executionArn"]))
            failure = report.failure
            progress(failure.line() if failure else f"{report.name}: {report.status}")
            runs.append(
                FileRun(path, dataset, source, report, _outputs(cloud, source, dataset, report))
            )
        counts = cloud.snapshot(lake_dir, {dataset for _, dataset in planned})
    result = query.run(lake_dir, args.query) if args.query else None
    if args.json:
        document: dict[str, Any] = {"lake": str(lake_dir), "files": [r.to_dict() for r in runs]}
        rows = uuid.uuid4().hex
        if result is not None:
            # The rows go in as `sluice query --json` writes them: re-reading them as Python
            # floats would drop a decimal's digits past the 17th.
            document["query"] = {"sql": args.query, "rows": rows}
        text = json.dumps(document, indent=2)
        if result is not None:
            text = text.replace(json.dumps(rows), query.render(result, "json").strip(), 1)
        print(text)
    else:
        for run in runs:
            _print_report(run)
        layers = ", ".join(f"{layer} {n}" for layer, n in counts.items())
        ok = sum(1 for r in runs if r.report.status == SUCCEEDED)
        print(f"lake: {lake_dir}/ ({layers} files; logs in {lake_dir}/_logs/)")
        print(f"{len(runs)} file(s): {ok} succeeded, {len(runs) - ok} failed")
        if result is not None:
            print()
            print(query.render(result, "table"))
    return 0 if all(r.report.status == SUCCEEDED for r in runs) else 1


def cmd_query(args: argparse.Namespace) -> int:
    print(query.render(query.run(Path(args.lake), args.sql), args.format))
    return 0


def cmd_ddl(args: argparse.Namespace) -> int:
    from sluice import catalog
    from sluice.config import CONTRACTS_DIR
    from sluice.contracts import find_contract

    names = args.datasets or sorted(p.stem for p in CONTRACTS_DIR.glob("*.yaml"))
    contracts = []
    for name in names:
        contract = find_contract(name, CONTRACTS_DIR)
        if contract is None:
            raise UsageError(f"no contract for dataset {name!r} in {CONTRACTS_DIR}")
        contracts.append(contract)
    if args.write:
        for path in catalog.write_catalog(contracts):
            print(f"wrote {path}")
        return 0
    for contract in contracts:
        print(catalog.dataset_ddl(contract))
    print(catalog.lineage_ddl())
    return 0

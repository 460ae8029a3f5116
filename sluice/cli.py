"""`sluice`: run the pipeline on the embedded local cloud and read what it did."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice import lake, query
from sluice.contracts import ContractError
from sluice.lake import SourceObject
from sluice.report import ExecutionReport, build_report, error_message, execution_history


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


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _outputs(
    cloud: Any, run_source: SourceObject, dataset: str, report: ExecutionReport
) -> list[dict[str, Any]]:
    """Every object the execution wrote, from its lineage manifest or quarantine record."""
    s3 = cloud.client("s3")
    lineage = report.output.get("delivery", {}).get("lineage")
    if lineage:
        manifest = json.loads(
            s3.get_object(Bucket=lineage["bucket"], Key=lineage["key"])["Body"].read()
        )
        layers = {v: k for k, v in cloud.buckets.items()}
        items = [
            {"layer": layers[o["bucket"]], "key": o["key"], "rows": o["rows"]}
            for o in manifest["outputs"]
        ]
        items.append({"layer": "delivery", "key": lineage["key"], "rows": None})
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
    if r.error:
        print(f"  error      {r.failed_stage or '?'}: {error_message(r.cause) or r.error}")
    for i, out in enumerate(run.outputs):
        rows = f"  ({out['rows']} rows)" if out["rows"] is not None else ""
        print(f"  {'outputs' if i == 0 else '':<10} {out['layer']}/{out['key']}{rows}")
    print()


def cmd_run(args: argparse.Namespace) -> int:
    from sluice.local import LocalCloud

    paths = [Path(p) for p in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"sluice: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.dataset and not lake.is_valid_dataset(args.dataset):
        print(
            f"sluice: {args.dataset!r} is not a dataset name (lower-case letters, digits, _)",
            file=sys.stderr,
        )
        return 2
    lake_dir = Path(args.lake)
    runs: list[FileRun] = []
    with LocalCloud() as cloud:
        _progress(f"local cloud up at {cloud.endpoint_url}")
        uploads = []
        for path in paths:
            dataset = args.dataset or lake.dataset_from_filename(path.name)
            source = cloud.upload(path, dataset)
            _progress(f"uploaded {path.name} → s3://{source.bucket}/{source.key}")
            uploads.append((path, dataset, source))
        sfn = cloud.client("stepfunctions")
        for path, dataset, source in uploads:
            description = cloud.wait(source, timeout=args.timeout)
            _progress(f"{description['name']}: {description['status']}")
            report = build_report(description, execution_history(sfn, description["executionArn"]))
            runs.append(
                FileRun(path, dataset, source, report, _outputs(cloud, source, dataset, report))
            )
        counts = cloud.snapshot(lake_dir)
    result = query.run(lake_dir, args.query) if args.query else None
    if args.json:
        document: dict[str, Any] = {"lake": str(lake_dir), "files": [r.to_dict() for r in runs]}
        if result is not None:
            document["query"] = {
                "sql": args.query,
                "rows": json.loads(query.render(result, "json")),
            }
        print(json.dumps(document, indent=2))
    else:
        for run in runs:
            _print_report(run)
        layers = ", ".join(f"{layer} {n}" for layer, n in counts.items())
        ok = sum(1 for r in runs if r.report.status == "SUCCEEDED")
        print(f"lake: {lake_dir}/ ({layers} files; logs in {lake_dir}/_logs/)")
        print(f"{len(runs)} file(s): {ok} succeeded, {len(runs) - ok} failed")
        if result is not None:
            print()
            print(query.render(result, "table"))
    return 0 if all(r.report.status == "SUCCEEDED" for r in runs) else 1


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
            raise RuntimeError(f"no contract for dataset {name!r} in {CONTRACTS_DIR}")
        contracts.append(contract)
    if args.write:
        for path in catalog.write_catalog(contracts):
            print(f"wrote {path}")
        return 0
    for contract in contracts:
        print(catalog.dataset_ddl(contract))
    print(catalog.lineage_ddl())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluice", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run files through the pipeline on the embedded local cloud")
    run.add_argument("files", nargs="+", metavar="FILE")
    run.add_argument(
        "--dataset", help="dataset name (default: file name up to its first '_' or '.')"
    )
    run.add_argument(
        "--lake", default="lake", help="folder to copy the buckets into (default: ./lake)"
    )
    run.add_argument("--json", action="store_true", help="print one JSON document")
    run.add_argument("--timeout", type=float, default=600.0, help="seconds to wait per execution")
    run.add_argument("--query", metavar="SQL", help="run this SQL over the lake afterwards")
    run.set_defaults(func=cmd_run)

    ask = sub.add_parser(
        "query", help="SQL over the local lake (DuckDB), with the Athena table names"
    )
    ask.add_argument("sql", metavar="SQL")
    ask.add_argument("--lake", default="lake", help="lake folder (default: ./lake)")
    ask.add_argument("--format", choices=query.FORMATS, default="table")
    ask.set_defaults(func=cmd_query)

    ddl = sub.add_parser("ddl", help="Athena DDL for the datasets' tables, from their contracts")
    ddl.add_argument("datasets", nargs="*", metavar="DATASET", help="default: every contract")
    ddl.add_argument("--write", action="store_true", help="write catalog/<dataset>.sql")
    ddl.set_defaults(func=cmd_ddl)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except (TimeoutError, RuntimeError, ContractError) as exc:
        print(f"sluice: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

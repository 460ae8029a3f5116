"""`sluice`: run the pipeline on the embedded local cloud and read what it did."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice import lake, ops, query
from sluice.config import LOCAL_STACK
from sluice.contracts import ContractError
from sluice.environments import DEFAULT_ENV, ENVIRONMENTS_CONTEXT_KEY, load_cdk_context
from sluice.lake import SourceObject
from sluice.report import ExecutionReport, Failure, build_report, execution_history
from sluice.tables import format_table


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


def _key_clash(bucket: str, keys: list[tuple[Path, str]]) -> str:
    """Why these files cannot go up together: two that would be one RAW object (the same name
    in the same dataset), the later one replacing the earlier. Empty when none do."""
    first: dict[str, Path] = {}
    for path, key in keys:
        if key in first:
            return (
                f"{first[key]} and {path} would both be s3://{bucket}/{key} (one file's rows would "
                "replace the other's): rename one, or run them apart"
            )
        first[key] = path
    return ""


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
    today = datetime.now(UTC).date()
    planned = [(path, args.dataset or lake.dataset_from_filename(path.name)) for path in paths]
    clash = _key_clash("raw", [(path, lake.raw_key(d, path.name, today)) for path, d in planned])
    if clash:
        print(f"sluice: {clash}", file=sys.stderr)
        return 2
    runs: list[FileRun] = []
    with LocalCloud(env=args.env, publish_stack=False) as cloud:
        _progress(f"local cloud up at {cloud.endpoint_url} (env {cloud.environment.name})")
        uploads = []
        for path, dataset in planned:
            source = cloud.upload(path, dataset, day=today)
            _progress(f"uploaded {path.name} → s3://{source.bucket}/{source.key}")
            uploads.append((path, dataset, source))
        sfn = cloud.client("stepfunctions")
        for path, dataset, source in uploads:
            description = cloud.wait(source, timeout=args.timeout)
            report = build_report(description, execution_history(sfn, description["executionArn"]))
            failure = report.failure
            _progress(failure.line() if failure else f"{report.name}: {report.status}")
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


# --------------------------------------------------------------------------- operations


def _target(args: argparse.Namespace) -> ops.Target:
    return ops.resolve(args.stack, args.endpoint_url)


def _emit(args: argparse.Namespace, document: Any, text: str) -> None:
    print(json.dumps(document, indent=2, default=str) if args.json else text)


def _short(moment: str | None) -> str:
    return moment.replace("T", " ")[:19] if moment else "-"


def local_cloud_setup(endpoint_url: str, region: str, keys: dict[str, str]) -> list[str]:
    """The shell lines that point boto3, the aws CLI and `sluice` at the local cloud: its
    endpoint, its region and the administrator's keys (the cloud checks every call against
    IAM), with the user's own profile and session token out of the way (a session token
    would be sent with the keys and refused)."""
    return [
        "unset AWS_PROFILE AWS_SESSION_TOKEN",
        f"export AWS_ENDPOINT_URL={endpoint_url} AWS_REGION={region} AWS_DEFAULT_REGION={region}",
        f"export AWS_ACCESS_KEY_ID={keys['AWS_ACCESS_KEY_ID']} "
        f"AWS_SECRET_ACCESS_KEY={keys['AWS_SECRET_ACCESS_KEY']}",
    ]


def cmd_up(args: argparse.Namespace) -> int:
    from sluice.local import LocalCloud
    from sluice.local.cloud import REGION

    _progress(f"provisioning stack {LOCAL_STACK}; port {args.port} opens when it is ready")
    with LocalCloud(port=args.port, env=args.env) as cloud:
        # The port opened only now: every resource of the stack exists.
        print(f"ready: local cloud at {cloud.endpoint_url} (stack {LOCAL_STACK}); Ctrl-C stops it")
        for line in local_cloud_setup(cloud.endpoint_url, REGION, cloud.credentials):
            print(f"  {line}")
        print("  aws s3 cp FILE s3://raw/<dataset>/FILE")
        print("  sluice upload FILE --dataset NAME --wait")
        sys.stdout.flush()
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            lost = cloud.discarded()
            print(
                f"stopping: discarding {lost['executions']} execution(s) "
                f"({lost['running']} still running), {lost['objects']} object(s) and "
                f"{lost['messages']} queued message(s); the local cloud keeps no state"
            )
            sys.stdout.flush()
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ops.OpsError(f"no such file: {', '.join(missing)}")
    dataset = args.dataset or lake.dataset_from_filename(paths[0].name)
    if not lake.is_valid_dataset(dataset):
        raise ops.OpsError(f"{dataset!r} is not a dataset name (lower-case letters, digits, _)")
    target = _target(args)
    today = datetime.now(UTC).date()
    keys = [(p, lake.raw_key(dataset, p.name, today)) for p in paths]
    clash = _key_clash(target.raw_bucket, keys)
    if clash:
        raise ops.OpsError(clash)
    if args.wait is None:
        items = ops.upload(target, paths, dataset, wait_seconds=ops.START_WAIT, today=today)
        lines = [
            f"{Path(i['file']).name} → s3://{i['bucket']}/{i['key']}  execution {i['execution']}"
            + ("" if i["started"] else " (not started yet)")
            for i in items
        ]
        _emit(args, items, "\n".join(lines))
        return 0
    deadline = time.monotonic() + args.wait
    items = ops.upload(target, paths, dataset, wait_seconds=args.wait, today=today)
    ops.await_uploads(target, items, max(0.0, deadline - time.monotonic()))
    lines = [
        f"{Path(i['file']).name} → s3://{i['bucket']}/{i['key']}  execution {i['execution']}  "
        + _upload_result(i, args.wait)
        for i in items
    ]
    _emit(args, items, "\n".join(lines))
    return 0 if all(i["outcome"] == "SUCCEEDED" for i in items) else 1


def _upload_result(item: dict[str, Any], wait_seconds: float) -> str:
    if item.get("failure"):
        return Failure(**item["failure"]).summary()
    if item["outcome"] == "NOT_STARTED":
        return f"not started after {wait_seconds:g} s"
    if item["outcome"] == "RUNNING":
        return f"still running after {wait_seconds:g} s"
    return str(item["outcome"])


def cmd_executions(args: argparse.Namespace) -> int:
    rows = ops.executions(_target(args), args.status, args.since, args.dataset)
    table = format_table(
        ["name", "status", "start", "duration", "failed stage", "source key"],
        [
            [
                r["name"],
                r["status"],
                _short(r["start"]),
                f"{r['duration_s']} s" if r["duration_s"] is not None else "-",
                r["failed_stage"] or "-",
                r["source_key"],
            ]
            for r in rows
        ],
        [False, False, False, True, False, False],
    )
    _emit(args, rows, f"{table}\n({len(rows)} execution{'s' if len(rows) != 1 else ''})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    target = _target(args)
    d = ops.show(target, args.execution)
    lines = [
        f"execution  {d['name']}",
        f"status     {d['status']}",
        f"started    {_short(d['start'])}   stopped {_short(d['stop'])}   "
        f"duration {d['duration_s'] if d['duration_s'] is not None else '-'} s",
    ]
    if d["console_url"]:
        lines.append(f"console    {d['console_url']}")
    lines.append("")
    lines.append(
        format_table(
            ["stage", "status", "entered", "exited", "duration", "attempts", "metrics"],
            [
                [
                    s["name"],
                    s["status"],
                    _short(s["entered"]),
                    _short(s["exited"]),
                    f"{s['duration_ms']} ms" if s["entered"] else "-",
                    str(s["attempts"]),
                    " ".join(f"{k}={v}" for k, v in s["metrics"].items()) or "-",
                ]
                for s in d["stages"]
            ],
            [False, False, False, False, True, True, False],
        )
    )
    for s in d["stages"]:
        for i, error in enumerate(s["errors"], start=1):
            lines.append(f"  {s['name']} attempt {i}: {error}")
    if d["error"]:
        lines += [
            "",
            f"error      {d['failed_stage'] or '?'}: {d['error']}",
            f"cause      {d['cause']}",
        ]
    lines += ["", f"input      {json.dumps(d['input'])}"]
    if d["output"]:
        lines.append(f"output     {json.dumps(d['output'])}")
    _emit(args, d, "\n".join(lines))
    return 0


def _rerun_result(plan: ops.Rerun, wait_seconds: float) -> str:
    """What became of one planned rerun, in a word or a few."""
    if plan.error:
        return plan.error
    if plan.action == "skip":
        return "-"
    if plan.outcome == "SUCCEEDED":
        return "SUCCEEDED"
    if plan.outcome in ops.TERMINAL:
        return f"{plan.outcome} again"
    return f"still running after {wait_seconds:g} s"


def _print_reruns(args: argparse.Namespace, plans: list[ops.Rerun], dry_run: bool) -> int:
    rows = [
        [
            p.execution,
            p.status,
            p.action,
            p.new_execution or "-",
            "planned" if dry_run else _rerun_result(p, args.wait),
            p.reason,
        ]
        for p in plans
    ]
    table = format_table(["execution", "status", "action", "new execution", "result", "why"], rows)
    _emit(args, [p.to_dict() for p in plans], table)
    if dry_run:
        return 0
    return 1 if any(p.error or (p.action != "skip" and not p.succeeded) for p in plans) else 0


def cmd_rerun(args: argparse.Namespace) -> int:
    if not args.executions and not args.failed:
        raise ops.OpsError("name executions to rerun, or pass --failed")
    target = _target(args)
    plans = ops.plan_rerun(
        target, args.executions, failed=args.failed, since=args.since, dataset=args.dataset
    )
    if not args.dry_run:
        plans = ops.rerun(target, plans)
        started = sum(1 for p in plans if p.done)
        if started:
            _progress(f"waiting up to {args.wait:g} s for {started} rerun(s) to finish")
        plans = ops.await_reruns(target, plans, args.wait)
    return _print_reruns(args, plans, args.dry_run)


def cmd_dlq(args: argparse.Namespace) -> int:
    target = _target(args)
    if args.queue == "redrive":
        which = args.which or "ingest"
        if which == "failures" and not args.dry_run:
            _progress(
                f"reruns are awaited up to {args.wait:g} s; a letter goes once its rerun SUCCEEDED"
            )
        results = ops.dlq_redrive(target, which, dry_run=args.dry_run, wait_seconds=args.wait)
        rows = [[r.id, r.what, _letter_result(r, args)] for r in results]
        _emit(
            args,
            [r.__dict__ for r in results],
            format_table(["message", "redrive", "result"], rows)
            + f"\n({len(results)} message{'s' if len(results) != 1 else ''})",
        )
        return 1 if not args.dry_run and any(not r.done for r in results) else 0
    which = args.queue or "failures"
    items = ops.dlq_list(target, which, peek=args.peek)
    if which == "failures":
        rows = [
            [i["id"], _short(i["sent"]), i["execution"] or "-", i["stage"] or "-", i["reason"]]
            for i in items
        ]
        headers = ["message", "sent", "execution", "stage", "reason"]
    else:
        rows = [
            [i["id"], _short(i["sent"]), ", ".join(i["keys"]) or "-", i["reason"]] for i in items
        ]
        headers = ["message", "sent", "keys", "reason"]
    text = (
        format_table(headers, rows)
        + f"\n({len(items)} dead letter{'s' if len(items) != 1 else ''})"
    )
    if args.peek:
        text += "".join(f"\n\n{i['id']}:\n{i['body']}" for i in items)
    _emit(args, items, text)
    return 0


def _letter_result(letter: ops.Redrive, args: argparse.Namespace) -> str:
    if args.dry_run:
        return "planned"
    if letter.done:
        return "done"
    if letter.error:
        return letter.error
    if letter.outcome in ops.TERMINAL:
        return f"kept: the rerun {letter.outcome} again"
    if letter.outcome == "RUNNING":
        return f"kept: the rerun is still running after {args.wait:g} s"
    return "kept"


def cmd_status(args: argparse.Namespace) -> int:
    d = ops.status(_target(args))
    queues = format_table(
        ["queue", "waiting", "in flight"],
        [[q, str(v["waiting"]), str(v["in_flight"])] for q, v in d["queues"].items()],
        [False, True, True],
    )
    runs = "  ".join(f"{k} {v}" for k, v in d["executions_24h"].items())
    lines = [f"stack      {d['stack']}", "", queues, "", f"last 24 h  {runs}"]
    if d["latest"]:
        lines.append(f"latest     {d['latest']['execution']}")
        for stage, metrics in d["latest"]["stages"].items():
            shown = " ".join(f"{k}={v}" for k, v in metrics.items()) or "-"
            lines.append(f"  {stage:<9} {shown}")
    _emit(args, d, "\n".join(lines))
    return 0


def _env_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        default=DEFAULT_ENV,
        choices=sorted(load_cdk_context().get(ENVIRONMENTS_CONTEXT_KEY, {})),
        help="the cdk.json environment whose function sizes and limits apply (default: dev)",
    )


def _target_options(parser: argparse.ArgumentParser, listing: bool = True) -> None:
    parser.add_argument(
        "--stack", help="stack name (default Sluice-dev, or Sluice-local with an endpoint)"
    )
    parser.add_argument(
        "--endpoint-url", help="the local cloud (`sluice up`); or set AWS_ENDPOINT_URL"
    )
    if listing:
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def _wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        default=ops.DEFAULT_RERUN_WAIT,
        metavar="SECONDS",
        help=f"how long to wait for the reruns to finish (default {ops.DEFAULT_RERUN_WAIT:g})",
    )


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
    _env_option(run)
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

    up = sub.add_parser("up", help="serve the local cloud until Ctrl-C")
    up.add_argument("--port", type=int, default=4566)
    _env_option(up)
    up.set_defaults(func=cmd_up)

    put = sub.add_parser("upload", help="upload files to RAW; prints each key and execution")
    put.add_argument("files", nargs="+", metavar="FILE")
    put.add_argument("--dataset", help="dataset (default: file name up to its first '_' or '.')")
    put.add_argument(
        "--wait",
        type=float,
        nargs="?",
        const=ops.DEFAULT_UPLOAD_WAIT,
        metavar="SECONDS",
        help="wait until each execution has ended (up to SECONDS, default "
        f"{ops.DEFAULT_UPLOAD_WAIT:g}); exit 1 unless every one SUCCEEDED",
    )
    _target_options(put)
    put.set_defaults(func=cmd_upload)

    listing = sub.add_parser("executions", help="list executions")
    listing.add_argument("--status", choices=ops.STATUSES)
    listing.add_argument("--since", help="e.g. 30m, 24h, 7d")
    listing.add_argument("--dataset")
    _target_options(listing)
    listing.set_defaults(func=cmd_executions)

    execution = sub.add_parser("execution", help="one execution")
    execution_sub = execution.add_subparsers(dest="action", required=True)
    show = execution_sub.add_parser("show", help="states, attempts, errors, input and output")
    show.add_argument("execution", metavar="NAME|ARN")
    _target_options(show)
    show.set_defaults(func=cmd_show)

    again = sub.add_parser("rerun", help="redrive or rerun failed executions")
    again.add_argument("executions", nargs="*", metavar="NAME|ARN")
    again.add_argument("--failed", action="store_true", help="every failed execution (see --since)")
    again.add_argument("--since", help="with --failed: how far back (default 7d)")
    again.add_argument("--dataset")
    again.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    _wait_option(again)
    _target_options(again)
    again.set_defaults(func=cmd_rerun)

    dlq = sub.add_parser("dlq", help="dead letters: list them, or `dlq redrive [ingest|failures]`")
    dlq.add_argument("queue", nargs="?", choices=["ingest", "failures", "redrive"])
    dlq.add_argument("which", nargs="?", choices=["ingest", "failures"])
    dlq.add_argument("--peek", action="store_true", help="also print each message's body")
    dlq.add_argument("--dry-run", action="store_true", help="with redrive: show, change nothing")
    _wait_option(dlq)
    _target_options(dlq)
    dlq.set_defaults(func=cmd_dlq)

    state = sub.add_parser("status", help="queue depths, executions in the last 24 h, metrics")
    _target_options(state)
    state.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except (TimeoutError, RuntimeError, ContractError, ops.OpsError) as exc:
        print(f"sluice: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

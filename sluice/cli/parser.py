"""`sluice`: run the pipeline on the embedded local cloud and read what it did."""

from __future__ import annotations

import argparse

from sluice import ops, query
from sluice.cli import dlq, executions, rerun, run, status, up, upload
from sluice.cli.options import env_option, since, target_options, wait_option

DLQS = ("ingest", "failures")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluice", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="run files through the pipeline on the embedded local cloud")
    go.add_argument("files", nargs="+", metavar="FILE")
    go.add_argument(
        "--dataset", help="dataset name (default: file name up to its first '_' or '.')"
    )
    go.add_argument(
        "--lake", default="lake", help="folder to copy the buckets into (default: ./lake)"
    )
    go.add_argument("--json", action="store_true", help="print one JSON document")
    go.add_argument("--timeout", type=float, default=600.0, help="seconds to wait per execution")
    go.add_argument("--query", metavar="SQL", help="run this SQL over the lake afterwards")
    env_option(go)
    go.set_defaults(func=run.cmd_run)

    ask = sub.add_parser(
        "query", help="SQL over the local lake (DuckDB), with the Athena table names"
    )
    ask.add_argument("sql", metavar="SQL")
    ask.add_argument("--lake", default="lake", help="lake folder (default: ./lake)")
    ask.add_argument("--format", choices=query.FORMATS, default="table")
    ask.set_defaults(func=run.cmd_query)

    ddl = sub.add_parser("ddl", help="Athena DDL for the datasets' tables, from their contracts")
    ddl.add_argument("datasets", nargs="*", metavar="DATASET", help="default: every contract")
    ddl.add_argument("--write", action="store_true", help="write catalog/<dataset>.sql")
    ddl.set_defaults(func=run.cmd_ddl)

    serve = sub.add_parser("up", help="serve the local cloud until Ctrl-C")
    serve.add_argument("--port", type=int, default=4566)
    env_option(serve)
    serve.set_defaults(func=up.cmd_up)

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
    target_options(put)
    put.set_defaults(func=upload.cmd_upload)

    looking = sub.add_parser("executions", help="list executions, or show one")
    looking_sub = looking.add_subparsers(dest="action", required=True)
    listing = looking_sub.add_parser("list", help="list executions, newest first")
    listing.add_argument("--status", choices=ops.STATUSES)
    listing.add_argument("--since", type=since, help="e.g. 30m, 24h, 7d")
    listing.add_argument("--dataset")
    target_options(listing)
    listing.set_defaults(func=executions.cmd_list)
    show = looking_sub.add_parser("show", help="states, attempts, errors, input and output")
    show.add_argument("execution", metavar="NAME|ARN")
    target_options(show)
    show.set_defaults(func=executions.cmd_show)

    again = sub.add_parser("rerun", help="redrive or rerun failed executions")
    again.add_argument("executions", nargs="*", metavar="NAME|ARN")
    again.add_argument("--failed", action="store_true", help="every failed execution (see --since)")
    again.add_argument("--since", type=since, help="with --failed: how far back (default 7d)")
    again.add_argument("--dataset")
    again.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    wait_option(again)
    target_options(again)
    again.set_defaults(func=rerun.cmd_rerun)

    letters = sub.add_parser("dlq", help="dead letters: list them, or redrive them")
    letters_sub = letters.add_subparsers(dest="action", required=True)
    peek = letters_sub.add_parser("list", help="dead letters with their reasons (hides nothing)")
    peek.add_argument(
        "queue", nargs="?", default="failures", choices=DLQS, help="default: failures"
    )
    peek.add_argument("--peek", action="store_true", help="also print each message's body")
    target_options(peek)
    peek.set_defaults(func=dlq.cmd_list)
    back = letters_sub.add_parser(
        "redrive", help="ingest letters back to the ingest queue; failure letters as reruns"
    )
    back.add_argument("queue", choices=DLQS)
    back.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    wait_option(back)
    target_options(back)
    back.set_defaults(func=dlq.cmd_redrive)

    state = sub.add_parser("status", help="queue depths, executions in the last 24 h, metrics")
    target_options(state)
    state.set_defaults(func=status.cmd_status)
    return parser

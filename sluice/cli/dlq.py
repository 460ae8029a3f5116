"""`sluice dlq list` and `sluice dlq redrive`: the dead letters."""

from __future__ import annotations

import argparse

from sluice import ops
from sluice.cli.options import resolve_target
from sluice.cli.render import counted, emit, progress, short
from sluice.config import RUNNING
from sluice.text_tables import format_table


def cmd_list(args: argparse.Namespace) -> int:
    items = ops.dlq_list(resolve_target(args), args.queue, peek=args.peek)
    if args.queue == "failures":
        rows = [
            [i["id"], short(i["sent"]), i["execution"] or "-", i["stage"] or "-", i["reason"]]
            for i in items
        ]
        headers = ["message", "sent", "execution", "stage", "reason"]
    else:
        rows = [
            [i["id"], short(i["sent"]), ", ".join(i["keys"]) or "-", i["reason"]] for i in items
        ]
        headers = ["message", "sent", "keys", "reason"]
    text = format_table(headers, rows) + "\n" + counted(len(items), "dead letter")
    if args.peek:
        text += "".join(f"\n\n{i['id']}:\n{i['body']}" for i in items)
    emit(args, items, text)
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    if args.queue == "failures" and not args.dry_run:
        progress(
            f"reruns are awaited up to {args.wait:g} s; a letter goes once its rerun SUCCEEDED"
        )
    results = ops.dlq_redrive(target, args.queue, dry_run=args.dry_run, wait_seconds=args.wait)
    rows = [[r.id, r.what, _letter_result(r, args)] for r in results]
    emit(
        args,
        [r.__dict__ for r in results],
        format_table(["message", "redrive", "result"], rows)
        + "\n"
        + counted(len(results), "message"),
    )
    return 1 if not args.dry_run and any(not r.done for r in results) else 0


def _letter_result(letter: ops.Redrive, args: argparse.Namespace) -> str:
    if args.dry_run:
        return "planned"
    if letter.done:
        return "done"
    if letter.error:
        return letter.error
    if letter.outcome in ops.TERMINAL:
        return f"kept: the rerun {letter.outcome} again"
    if letter.outcome == RUNNING:
        return f"kept: the rerun is still running after {args.wait:g} s"
    return "kept"

"""`sluice rerun`: redrive or rerun failed executions, and wait for them."""

from __future__ import annotations

import argparse

from sluice import ops
from sluice.cli.options import resolve_target
from sluice.cli.render import emit, progress
from sluice.config import SUCCEEDED
from sluice.text_tables import format_table


def _rerun_result(plan: ops.Rerun, wait_seconds: float) -> str:
    """What became of one planned rerun, in a word or a few."""
    if plan.error:
        return plan.error
    if plan.action == "skip":
        return "-"
    if plan.outcome == SUCCEEDED:
        return SUCCEEDED
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
    emit(args, [p.to_dict() for p in plans], table)
    if dry_run:
        return 0
    return 1 if any(p.error or (p.action != "skip" and not p.succeeded) for p in plans) else 0


def cmd_rerun(args: argparse.Namespace) -> int:
    if not args.executions and not args.failed:
        raise ops.UsageError("name executions to rerun, or pass --failed")
    target = resolve_target(args)
    plans = ops.plan_rerun(
        target, args.executions, failed=args.failed, since=args.since, dataset=args.dataset
    )
    if not args.dry_run:
        plans = ops.rerun(target, plans)
        started = sum(1 for p in plans if p.done)
        if started:
            progress(f"waiting up to {args.wait:g} s for {started} rerun(s) to finish")
        plans = ops.await_reruns(target, plans, args.wait)
    return _print_reruns(args, plans, args.dry_run)

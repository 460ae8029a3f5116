"""`sluice status`: the pipeline at a glance."""

from __future__ import annotations

import argparse

from sluice import ops
from sluice.cli.options import resolve_target
from sluice.cli.render import emit
from sluice.text_tables import format_table


def cmd_status(args: argparse.Namespace) -> int:
    d = ops.status(resolve_target(args))
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
    emit(args, d, "\n".join(lines))
    return 0

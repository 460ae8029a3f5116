"""`sluice executions list` and `sluice executions show`."""

from __future__ import annotations

import argparse
import json

from sluice import ops
from sluice.cli.options import resolve_target
from sluice.cli.render import counted, emit, short
from sluice.text_tables import format_table


def cmd_list(args: argparse.Namespace) -> int:
    rows = ops.executions(resolve_target(args), args.status, args.since, args.dataset)
    table = format_table(
        ["name", "status", "start", "duration", "failed stage", "source key"],
        [
            [
                r["name"],
                r["status"],
                short(r["start"]),
                f"{r['duration_s']} s" if r["duration_s"] is not None else "-",
                r["failed_stage"] or "-",
                r["source_key"],
            ]
            for r in rows
        ],
        [False, False, False, True, False, False],
    )
    emit(args, rows, f"{table}\n{counted(len(rows), 'execution')}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    d = ops.show(target, args.execution)
    lines = [
        f"execution  {d['name']}",
        f"status     {d['status']}",
        f"started    {short(d['start'])}   stopped {short(d['stop'])}   "
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
                    short(s["entered"]),
                    short(s["exited"]),
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
    emit(args, d, "\n".join(lines))
    return 0

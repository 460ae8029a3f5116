"""`sluice`: run the pipeline on the embedded local cloud and read what it did.

`parser` builds the command line; each command lives with its group (`run`, `up`, `upload`,
`executions`, `rerun`, `dlq`, `status`) and prints through `render`.
"""

from __future__ import annotations

import sys

from sluice import ops
from sluice.cli.parser import build_parser
from sluice.cli.up import local_cloud_setup
from sluice.contracts import ContractError

__all__ = ["build_parser", "local_cloud_setup", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit code 0 when it did what was asked; 1 when it failed (an AWS
    error, an execution that failed, a letter left in its DLQ); 2 when it was asked wrongly
    (argparse's own errors, and `UsageError`s: a missing file, a bad `--since`)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: 2 after a usage error, 0 after --help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except ops.UsageError as exc:
        print(f"sluice: {exc}", file=sys.stderr)
        return 2
    except (TimeoutError, RuntimeError, ContractError, ops.OpsError) as exc:
        print(f"sluice: {exc}", file=sys.stderr)
        return 1

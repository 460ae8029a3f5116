"""CDK entry point: `cdk synth -c env=prod`, or `python app.py` for the dev stack in cdk.out/."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

from aws_cdk import App, cx_api

from infra.settings import load_cdk_context
from infra.stack import create_stack

ROOT = Path(__file__).resolve().parent


def main() -> None:
    # The CDK CLI passes cdk.json's context itself and says where to write; a plain
    # `python app.py` gets neither, so both are filled in here as defaults the CLI overrides.
    run_by_cli = "CDK_OUTDIR" in os.environ
    app = App(
        context=load_cdk_context(ROOT / "cdk.json"),
        outdir=None if run_by_cli else str(ROOT / "cdk.out"),
    )
    create_stack(app)
    assembly = app.synth()
    if not run_by_cli and _nag_findings(assembly):
        # The CLI fails on error annotations itself; a plain run must not pass quietly.
        sys.exit(1)


def _nag_findings(assembly: cx_api.CloudAssembly) -> int:
    """Print a tally of unsuppressed cdk-nag findings; how many there are."""
    findings: Counter[str] = Counter()
    for stack in assembly.stacks:
        for message in stack.messages:
            text = str(message.entry.data)
            if message.level.name == "ERROR" and text.startswith(("AwsSolutions-", "Serverless-")):
                findings[text.split(":", 1)[0].split("[", 1)[0]] += 1
    if findings:
        tally = ", ".join(f"{rule} x{count}" for rule, count in sorted(findings.items()))
        print(f"cdk-nag: {findings.total()} unsuppressed findings ({tally})", file=sys.stderr)
    return findings.total()


if __name__ == "__main__":
    main()

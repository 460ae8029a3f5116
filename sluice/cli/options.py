"""The options several commands share, and the target they name."""

from __future__ import annotations

import argparse

from sluice import ops
from sluice.environments import DEFAULT_ENV, ENVIRONMENTS_CONTEXT_KEY, load_cdk_context
from sluice.ops.executions import parse_since


def resolve_target(args: argparse.Namespace) -> ops.Target:
    """The stack `--stack` and `--endpoint-url` name (see `ops.resolve`)."""
    return ops.resolve(args.stack, args.endpoint_url)


def since(text: str) -> str:
    """An argparse type: `--since` as written (30m, 24h, 7d), refused at once when it is not."""
    try:
        parse_since(text)
    except ops.UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--since ")) from None
    return text


def env_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        default=DEFAULT_ENV,
        choices=sorted(load_cdk_context().get(ENVIRONMENTS_CONTEXT_KEY, {})),
        help="the cdk.json environment whose function sizes and limits apply (default: dev)",
    )


def target_options(parser: argparse.ArgumentParser, listing: bool = True) -> None:
    parser.add_argument(
        "--stack", help="stack name (default Sluice-dev, or Sluice-local with an endpoint)"
    )
    parser.add_argument(
        "--endpoint-url", help="the local cloud (`sluice up`); or set AWS_ENDPOINT_URL"
    )
    if listing:
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        default=ops.DEFAULT_RERUN_WAIT,
        metavar="SECONDS",
        help=f"how long to wait for the reruns to finish (default {ops.DEFAULT_RERUN_WAIT:g})",
    )

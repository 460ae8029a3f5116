"""`sluice up`: serve the local cloud until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import time

from sluice.cli.render import progress
from sluice.config import LOCAL_STACK


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

    progress(f"provisioning stack {LOCAL_STACK}; port {args.port} opens when it is ready")
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

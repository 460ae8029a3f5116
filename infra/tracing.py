"""X-Ray: what the services trace by themselves, and no more.

Active tracing is on for every function and for the state machine: Lambda then records each
invocation's segment (initialization, invocation, overhead) and Step Functions each execution's
states and the Lambda tasks they call, without any SDK in the functions. The functions use no
X-Ray SDK (no Powertools `Tracer`), so there are no subsegments for their own S3 or Step
Functions calls: a trace shows where an execution spent its time stage by stage, and the stage
metrics and logs say what a stage did. Adding the SDK would put `aws-xray-sdk` in the layer and
patch botocore at every cold start; `tests/infra/test_tracing.py` keeps the code, the stack and
docs/architecture.md saying the same.
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from cdk_nag import NagPackSuppression

# Every stage function's tracing mode and the state machine's `tracing_enabled`.
FUNCTION_TRACING = lambda_.Tracing.ACTIVE
STATE_MACHINE_TRACING = True

# What CDK grants for X-Ray tracing and state machine log delivery is `Resource: *` by necessity.
TRACING_SUPPRESSION = NagPackSuppression(
    id="AwsSolutions-IAM5",
    reason=(
        "X-Ray (PutTraceSegments, PutTelemetryRecords, GetSampling*) and CloudWatch Logs "
        "vended-log delivery actions do not support resource-level permissions."
    ),
    applies_to=["Resource::*"],
)

"""Operating the pipeline: upload, look at executions, rerun failures, drain dead letters.

Every function works on a `Target` (`target`): the deployed CDK stack or the local cloud. One
module per job: `upload` (with its `progress` bar), `executions` (list and show), `rerun`,
`dlq` (dead letters) and `status`. The names here are the ones callers use.
"""

from sluice.ops.dlq import Redrive, dlq_list, dlq_redrive
from sluice.ops.executions import RERUNNABLE, STATUSES, TERMINAL, executions, report_of, show
from sluice.ops.rerun import DEFAULT_RERUN_WAIT, Rerun, await_reruns, plan_rerun, rerun
from sluice.ops.status import status
from sluice.ops.target import OpsError, Target, UsageError, aws_errors, resolve
from sluice.ops.upload import DEFAULT_UPLOAD_WAIT, START_WAIT, await_uploads, upload

__all__ = [
    "DEFAULT_RERUN_WAIT",
    "DEFAULT_UPLOAD_WAIT",
    "RERUNNABLE",
    "START_WAIT",
    "STATUSES",
    "TERMINAL",
    "OpsError",
    "Redrive",
    "Rerun",
    "Target",
    "UsageError",
    "await_reruns",
    "await_uploads",
    "aws_errors",
    "dlq_list",
    "dlq_redrive",
    "executions",
    "plan_rerun",
    "report_of",
    "rerun",
    "resolve",
    "show",
    "status",
    "upload",
]

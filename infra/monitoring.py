"""Alarms on what needs a person, an SNS topic for them, and a dashboard of the pipeline."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.settings import EnvironmentSettings
from sluice.config import METRICS_NAMESPACE, STAGES

# An ingest event older than this means the starter is not keeping up or is failing.
OLDEST_MESSAGE_SECONDS = 900
# The per-stage metrics the handlers publish (Powertools EMF, dimension `service` = stage).
STAGE_METRICS = ("RowsIn", "RowsOut", "RowsRejected", "Duplicates", "DurationMs", "DataErrors")


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        key: kms.IKey | None,
        functions: dict[str, lambda_.Function],
        state_machine: sfn.StateMachine,
        queues: dict[str, sqs.Queue],
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self.topic = sns.Topic(
            self,
            "Alarms",
            topic_name=f"{settings.prefix}-alarms",
            display_name=f"Sluice {settings.name} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if settings.alarm_email:
            subscription = self.topic.add_subscription(
                subscriptions.EmailSubscription(settings.alarm_email)
            )
            NagSuppressions.add_resource_suppressions(
                subscription,
                [
                    NagPackSuppression(
                        id="Serverless-SNSRedrivePolicy",
                        reason=(
                            "An alarm e-mail that cannot be delivered has nothing to redo: the "
                            "alarm stays in ALARM and is visible in CloudWatch."
                        ),
                    )
                ],
            )
        self.alarms: dict[str, cw.Alarm] = {}
        self._queue_alarms(queues)
        self._state_machine_alarms(state_machine)
        self._function_alarms(functions)
        self.dashboard = self._dashboard(functions, state_machine, queues)

    def _alarm(self, name: str, metric: cw.IMetric, threshold: float, what: str) -> None:
        alarm = metric.create_alarm(
            self,
            name,
            alarm_name=f"{self._settings.prefix}-{name}",
            alarm_description=what,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.alarms[name] = alarm

    def _queue_alarms(self, queues: dict[str, sqs.Queue]) -> None:
        period = Duration.minutes(1)
        self._alarm(
            "failure-dlq-depth",
            queues["failures"].metric_approximate_number_of_messages_visible(period=period),
            1,
            "A failed execution is waiting in the failure DLQ: `sluice dlq failures`.",
        )
        self._alarm(
            "ingest-dlq-depth",
            queues["ingest_dlq"].metric_approximate_number_of_messages_visible(period=period),
            1,
            "An S3 event could not start an execution: `sluice dlq ingest`.",
        )
        self._alarm(
            "ingest-oldest-message",
            queues["ingest"].metric_approximate_age_of_oldest_message(period=period),
            OLDEST_MESSAGE_SECONDS,
            "Uploads are waiting too long to start: the starter is failing or throttled.",
        )

    def _state_machine_alarms(self, state_machine: sfn.StateMachine) -> None:
        period = Duration.minutes(5)
        for name, metric, what in [
            ("executions-failed", state_machine.metric_failed(period=period), "failed"),
            ("executions-timed-out", state_machine.metric_timed_out(period=period), "timed out"),
            ("executions-throttled", state_machine.metric_throttled(period=period), "throttled"),
        ]:
            self._alarm(name, metric, 1, f"An execution {what}: `sluice executions --status`.")

    def _function_alarms(self, functions: dict[str, lambda_.Function]) -> None:
        period = Duration.minutes(5)
        for stage in STAGES:
            function = functions[stage]
            self._alarm(
                f"{stage}-errors",
                function.metric_errors(period=period),
                1,
                f"The {stage} function raised errors.",
            )
            self._alarm(
                f"{stage}-throttles",
                function.metric_throttles(period=period),
                1,
                f"The {stage} function was throttled.",
            )

    def _dashboard(
        self,
        functions: dict[str, lambda_.Function],
        state_machine: sfn.StateMachine,
        queues: dict[str, sqs.Queue],
    ) -> cw.Dashboard:
        dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=f"{self._settings.prefix}-pipeline"
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Executions",
                left=[
                    state_machine.metric_started(),
                    state_machine.metric_succeeded(),
                    state_machine.metric_failed(),
                    state_machine.metric_timed_out(),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Queues (messages visible)",
                left=[
                    queue.metric_approximate_number_of_messages_visible(label=name)
                    for name, queue in queues.items()
                ],
                width=12,
            ),
        )
        for metric_name in STAGE_METRICS:
            dashboard.add_widgets(
                cw.GraphWidget(
                    title=metric_name,
                    left=[
                        cw.Metric(
                            namespace=METRICS_NAMESPACE,
                            metric_name=metric_name,
                            # the handlers' Metrics(service=<stage>)
                            dimensions_map={"service": stage},
                            statistic="Sum" if metric_name != "DurationMs" else "Average",
                            label=stage,
                        )
                        for stage in STAGES
                    ],
                    width=8,
                )
            )
        dashboard.add_widgets(
            *[
                cw.GraphWidget(
                    title=f"{stage} function",
                    left=[functions[stage].metric_errors(), functions[stage].metric_throttles()],
                    right=[functions[stage].metric_duration()],
                    width=6,
                )
                for stage in STAGES
            ]
        )
        return dashboard

    @property
    def dashboard_url(self) -> str:
        region = Stack.of(self).region
        return (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#dashboards:name={self.dashboard.dashboard_name}"
        )

"""Alarms on what needs a person, an SNS topic for them, and a dashboard of the pipeline."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.settings import EnvironmentSettings
from sluice import metrics as published
from sluice.config import STAGES

_AT_OR_ABOVE = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
# An ingest event older than this means the starter is not keeping up or is failing.
OLDEST_MESSAGE_SECONDS = 900
# A file whose TRUSTED rows score less than this on average (docs/quality.md) needs a look at
# its source: rows are arriving with values missing or failing the contract's flag checks.
QUALITY_SCORE_FLOOR = 0.8
# What happened to each dataset's files, graphed per dataset: a metric and the stage whose
# series are drawn (None: every stage that publishes it).
BY_DATASET: tuple[tuple[published.Metric, str | None], ...] = (
    (published.ROWS_IN, "validate"),
    (published.ROWS_OUT, "trusted"),
    (published.ROWS_REJECTED, "trusted"),
    (published.MEAN_QUALITY_SCORE, "trusted"),
    (published.BYTES_OUT, "delivery"),
    (published.DATA_ERRORS, None),
)


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
        if key is not None:
            self._let_cloudwatch_publish(key)
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
        self._data_alarms()
        self.dashboard = self._dashboard(functions, state_machine, queues)

    @staticmethod
    def _let_cloudwatch_publish(key: kms.IKey) -> None:
        # CloudWatch publishes alarms to the topic, which the key encrypts.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
            )
        )

    def _alarm(
        self,
        name: str,
        metric: cw.IMetric,
        threshold: float,
        what: str,
        comparison: cw.ComparisonOperator = _AT_OR_ABOVE,
    ) -> None:
        alarm = metric.create_alarm(
            self,
            name,
            alarm_name=f"{self._settings.prefix}-{name}",
            alarm_description=what,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=comparison,
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
            "A failed execution is waiting in the failure DLQ: `sluice dlq list failures`.",
        )
        self._alarm(
            "ingest-dlq-depth",
            queues["ingest_dlq"].metric_approximate_number_of_messages_visible(period=period),
            1,
            "An S3 event could not start an execution: `sluice dlq list ingest`.",
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
            self._alarm(name, metric, 1, f"An execution {what}: `sluice executions list --status`.")

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

    def _data_alarms(self) -> None:
        # The [service] series holds every dataset's files, so one alarm watches them all.
        self._alarm(
            "trusted-quality-score",
            _stage_metric(published.MEAN_QUALITY_SCORE, "trusted", statistic=published.MINIMUM),
            QUALITY_SCORE_FLOOR,
            f"A file's TRUSTED rows scored below {QUALITY_SCORE_FLOOR} on average: its "
            "QUALITY records say which columns and checks (`sluice executions list --dataset`).",
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
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
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Starter",
                left=[
                    _stage_metric(metric, published.STARTER, label=metric.name)
                    for metric in published.STARTER_METRICS
                ],
                width=8,
            ),
            *[
                cw.GraphWidget(
                    title=metric.name,
                    left=[_stage_metric(metric, stage, label=stage) for stage in metric.services],
                    width=8,
                )
                for metric in published.STAGE_METRICS
            ],
        )
        dashboard.add_widgets(
            *[
                cw.GraphWidget(
                    title=f"{metric.name} by dataset" + (f" ({stage})" if stage else ""),
                    left=[_by_dataset(metric, stage)],
                    width=8,
                )
                for metric, stage in BY_DATASET
            ]
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


def _stage_metric(
    metric: published.Metric,
    service: str,
    *,
    statistic: str | None = None,
    label: str | None = None,
) -> cw.Metric:
    """A metric as the `service` handler publishes it under [service], for every dataset."""
    return cw.Metric(
        namespace=published.NAMESPACE,
        metric_name=metric.name,
        dimensions_map={published.SERVICE: service},
        statistic=statistic or metric.statistic,
        period=Duration.minutes(5),
        label=label,
    )


def _by_dataset(metric: published.Metric, service: str | None) -> cw.SearchExpression:
    """One series per dataset (of the [service, dataset] set), whichever datasets appear."""
    period = Duration.minutes(5)
    schema = ",".join([published.NAMESPACE, *published.BY_DATASET])
    terms = f'MetricName="{metric.name}"'
    if service:
        terms += f' {published.SERVICE}="{service}"'
    return cw.SearchExpression(
        expression=(
            f"SEARCH('{{{schema}}} {terms}', '{metric.statistic}', {int(period.to_seconds())})"
        ),
        label=f"${{PROP('Dim.{published.DATASET}')}}"
        + ("" if service else f" ${{PROP('Dim.{published.SERVICE}')}}"),
        period=period,
    )

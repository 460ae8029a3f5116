"""The lake's buckets: RAW as received, TRUSTED and DELIVERY Parquet, QUARANTINE for rejects."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.settings import EnvironmentSettings
from sluice.config import STAGING_PREFIX


class Storage(Construct):
    """Four private, versioned, TLS-only, access-logged buckets, encrypted with the pipeline's
    key (or SSE-S3 by setting), and the bucket their access logs go to."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self.key = self._key("Key", "data at rest in the buckets") if settings.uses_kms else None
        # Queues and topic get their own key: S3 needs a grant on it to publish RAW's events,
        # and a grant naming RAW on RAW's own key would make the two depend on each other.
        self.messaging_key = (
            self._key("MessagingKey", "messages in the queues and topic", "-messaging")
            if settings.uses_kms
            else None
        )
        self.access_logs = self._access_log_bucket()
        self.raw = self.data_bucket("Raw", self._raw_lifecycle(), object_lock=True)
        self.trusted = self.data_bucket("Trusted", self._trusted_lifecycle())
        self.delivery = self.data_bucket("Delivery")
        self.quarantine = self.data_bucket("Quarantine")

    def _key(self, construct_id: str, what: str, suffix: str = "") -> kms.Key:
        return kms.Key(
            self,
            construct_id,
            description=f"Sluice {self._settings.name}: {what}",
            enable_key_rotation=True,
            removal_policy=self._settings.removal_policy,
            alias=f"alias/{self._settings.prefix}{suffix}",
        )

    def _access_log_bucket(self) -> s3.Bucket:
        destroy = self._settings.removal_policy == RemovalPolicy.DESTROY
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            # S3 server access logs can only be delivered to an SSE-S3 bucket.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            removal_policy=self._settings.removal_policy,
            auto_delete_objects=destroy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="access-log-expiry",
                    expiration=Duration.days(self._settings.access_log_days),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
        )
        NagSuppressions.add_resource_suppressions(
            bucket,
            [
                NagPackSuppression(
                    id="AwsSolutions-S1",
                    reason="This is the access-log bucket; logging it into itself would loop.",
                )
            ],
        )
        return bucket

    @property
    def buckets(self) -> dict[str, s3.Bucket]:
        """The buckets by lake layer name (`sluice.config.LAYERS`)."""
        return {
            "raw": self.raw,
            "trusted": self.trusted,
            "delivery": self.delivery,
            "quarantine": self.quarantine,
        }

    def data_bucket(
        self,
        construct_id: str,
        lifecycle_rules: Sequence[s3.LifecycleRule] = (),
        *,
        object_lock: bool = False,
        expire_days: int | None = None,
    ) -> s3.Bucket:
        """A private, versioned, TLS-only, access-logged bucket encrypted like the lake."""
        settings = self._settings
        if expire_days is not None:
            lifecycle_rules = [
                *lifecycle_rules,
                s3.LifecycleRule(id="expiry", expiration=Duration.days(expire_days)),
            ]
        destroy = settings.removal_policy == RemovalPolicy.DESTROY
        lock_days = settings.raw_object_lock_days if object_lock else 0
        rules = [
            *lifecycle_rules,
            # Old versions are for undoing a bad rerun, not for keeping forever.
            s3.LifecycleRule(
                id="noncurrent-version-expiry",
                noncurrent_version_expiration=Duration.days(settings.noncurrent_version_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            ),
        ]
        return s3.Bucket(
            self,
            construct_id,
            # Versions let a bad rerun be undone and RAW be replayed exactly as it arrived.
            versioned=True,
            encryption=s3.BucketEncryption.KMS if self.key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=self.key,
            # One data key per bucket instead of a KMS call per object.
            bucket_key_enabled=True if self.key else None,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{construct_id.lower()}/",
            removal_policy=settings.removal_policy,
            # Emptying a bucket on delete only makes sense where the data is disposable.
            auto_delete_objects=destroy and not lock_days,
            lifecycle_rules=rules,
            object_lock_enabled=True if lock_days else None,
            object_lock_default_retention=(
                s3.ObjectLockRetention.governance(Duration.days(lock_days)) if lock_days else None
            ),
        )

    @staticmethod
    def _raw_lifecycle() -> list[s3.LifecycleRule]:
        # RAW is read once by Validate and afterwards only for replays and audits, which
        # tolerate Glacier's retrieval delay; seven years covers common retention rules.
        return [
            s3.LifecycleRule(
                id="raw-tiering",
                transitions=_tiering(ia_days=30, glacier_days=90),
                expiration=Duration.days(2555),
            )
        ]

    @staticmethod
    def _trusted_lifecycle() -> list[s3.LifecycleRule]:
        # Daily summaries re-read a day's TRUSTED files only while that day still receives
        # data, so older partitions can cool down; TRUSTED is the system of record and stays.
        return [
            s3.LifecycleRule(
                id="trusted-tiering",
                transitions=_tiering(ia_days=60, glacier_days=180),
            ),
            # Staged Parquet is only read by the Trusted stage of the same execution; what a
            # failed execution leaves behind must outlive Step Functions' 14-day redrive window.
            s3.LifecycleRule(
                id="trusted-staging-expiry",
                prefix=f"{STAGING_PREFIX}/",
                expiration=Duration.days(14),
                noncurrent_version_expiration=Duration.days(1),
            ),
        ]


def _tiering(ia_days: int, glacier_days: int) -> list[s3.Transition]:
    """Standard-IA after `ia_days`, Glacier after `glacier_days`."""
    return [
        s3.Transition(
            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
            transition_after=Duration.days(ia_days),
        ),
        s3.Transition(
            storage_class=s3.StorageClass.GLACIER, transition_after=Duration.days(glacier_days)
        ),
    ]

"""The lake's buckets: RAW as received, TRUSTED and DELIVERY Parquet, QUARANTINE for rejects."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.settings import EnvironmentSettings
from sluice.config import STAGING_PREFIX


class Storage(Construct):
    """Four private, versioned, TLS-only buckets; names are left to CloudFormation."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self.raw = self._bucket("Raw", self._raw_lifecycle())
        self.trusted = self._bucket("Trusted", self._trusted_lifecycle())
        self.delivery = self._bucket("Delivery", [])
        self.quarantine = self._bucket("Quarantine", [])

    @property
    def buckets(self) -> dict[str, s3.Bucket]:
        """The buckets by lake layer name (`sluice.config.LAYERS`)."""
        return {
            "raw": self.raw,
            "trusted": self.trusted,
            "delivery": self.delivery,
            "quarantine": self.quarantine,
        }

    def _bucket(self, construct_id: str, lifecycle_rules: Sequence[s3.LifecycleRule]) -> s3.Bucket:
        destroy = self._settings.removal_policy == RemovalPolicy.DESTROY
        return s3.Bucket(
            self,
            construct_id,
            # Versions let a bad rerun be undone and RAW be replayed exactly as it arrived.
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            removal_policy=self._settings.removal_policy,
            # Emptying a bucket on delete only makes sense where the data is disposable.
            auto_delete_objects=destroy,
            lifecycle_rules=list(lifecycle_rules) or None,
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

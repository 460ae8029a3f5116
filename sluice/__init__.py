"""Sluice: a serverless ETL pipeline for AWS (RAW → TRUSTED → DELIVERY) that also runs locally."""

__version__ = "0.1.0"

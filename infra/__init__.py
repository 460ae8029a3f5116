"""The CDK app's constructs: storage, ingest and workflow, wired by `infra.stack`."""

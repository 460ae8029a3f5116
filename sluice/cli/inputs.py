"""The checks on what a user hands `sluice run` and `sluice upload`: files, a dataset name, and
files that would land on one object."""

from __future__ import annotations

from pathlib import Path

from sluice import lake
from sluice.ops import UsageError


def existing_files(names: list[str]) -> list[Path]:
    """The files named; a `UsageError` naming those that are not there."""
    paths = [Path(name) for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    return paths


def check_dataset(dataset: str) -> None:
    if not lake.is_valid_dataset(dataset):
        raise UsageError(f"{dataset!r} is not a dataset name (lower-case letters, digits, _)")


def key_clash(bucket: str, keys: list[tuple[Path, str]]) -> str:
    """Why these files cannot go up together: two that would be one RAW object (the same name
    in the same dataset), the later one replacing the earlier. Empty when none do."""
    first: dict[str, Path] = {}
    for path, key in keys:
        if key in first:
            return (
                f"{first[key]} and {path} would both be s3://{bucket}/{key} (one file's rows would "
                "replace the other's): rename one, or run them apart"
            )
        first[key] = path
    return ""

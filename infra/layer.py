"""The functions' dependency layer, built from PyPI wheels without Docker.

The AWS SDK for pandas managed layer builds its own pyarrow without zstd or lz4, the codecs
Sluice writes; so the functions get a layer of their own: `pip install --platform ... --target`
of the exact versions in `requirements/lambda.txt` (the same versions the development venv is
constrained to), trimmed of what the stages never load. Built layers are cached in
`build/lambda-layer/`, keyed by the requirements, architecture and Python version.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from sluice.config import PROJECT_ROOT

REQUIREMENTS = PROJECT_ROOT / "requirements" / "lambda.txt"
CACHE = PROJECT_ROOT / "build" / "lambda-layer"
# Lambda's Python 3.12 runtime runs on Amazon Linux 2023 (glibc 2.34).
_PLATFORMS = ("manylinux2014", "manylinux_2_28", "manylinux_2_34")
_MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
# Never loaded by the stages: Arrow Flight and Arrow's own S3 client (boto3 does S3), which
# nothing else links to (Substrait is linked by pyarrow.lib and stays), headers, Cython
# sources, test suites and the link-time copies of libarrow_python.
_TRIM_GLOBS = (
    "pyarrow/libarrow_flight.so*",
    "pyarrow/_flight*.so",
    "pyarrow/libarrow_s3.so*",
    "pyarrow/_s3fs*.so",
    "pyarrow/libarrow_python.so",
    "pyarrow/libarrow_python.so.*.*.*",
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/**/*.pxd",
    "pyarrow/**/*.pyx",
    "pyarrow/**/*.pxi",
    "**/tests",
    "**/__pycache__",
)


def requirement_lines(path: Path = REQUIREMENTS) -> list[str]:
    return [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def pins(path: Path = REQUIREMENTS) -> dict[str, str]:
    """Package name (normalized) -> pinned version."""
    found = {}
    for line in requirement_lines(path):
        name, _, version = line.partition("==")
        found[name.lower().replace("_", "-")] = version
    return found


def _trim(root: Path) -> None:
    for pattern in _TRIM_GLOBS:
        for path in sorted(root.glob(pattern), reverse=True):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()


def build(architecture: str, python_version: str = "3.12", cache: Path = CACHE) -> Path:
    """The layer's folder (holding `python/`), built on first use."""
    machine = _MACHINES[architecture]
    key = hashlib.sha256(
        "\n".join([*requirement_lines(), architecture, python_version, *_TRIM_GLOBS]).encode()
    ).hexdigest()[:16]
    target = cache / f"{architecture}-py{python_version}-{key}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    staging = target.with_suffix(".partial")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        *[arg for tag in _PLATFORMS for arg in ("--platform", f"{tag}_{machine}")],
        "--target",
        str(staging / "python"),
        "-r",
        str(REQUIREMENTS),
    ]
    subprocess.run(command, check=True)
    _trim(staging / "python")
    staging.rename(target)
    (target / ".complete").touch()
    return target


def size_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class DependencyLayer(Construct):
    """A layer of the pinned dependencies for one architecture."""

    def __init__(self, scope: Construct, construct_id: str, *, architecture: str) -> None:
        super().__init__(scope, construct_id)
        self.folder = build(architecture)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(self.folder), exclude=[".complete"]),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[
                lambda_.Architecture.ARM_64
                if architecture == "arm64"
                else lambda_.Architecture.X86_64
            ],
            description=f"Sluice dependencies: {len(requirement_lines())} pinned packages "
            "(requirements/lambda.txt)",
        )

"""The dependency layer: the versions the tests run with, trimmed but working, within limits."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from infra import layer
from sluice.config import PROJECT_ROOT
from tests.infra.synth import Synth

pytestmark = pytest.mark.slow

# Lambda's limit for a function's code plus all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def test_the_venv_runs_the_versions_the_layer_holds() -> None:
    # Given the pins of requirements/lambda.txt
    # Then the development venv (constrained by the same file) has exactly those versions
    installed = {name: metadata.version(name) for name in layer.pins() if _installed(name)}
    assert installed == layer.pins()


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_the_layer_holds_exactly_the_pinned_packages_trimmed(dev: Synth) -> None:
    # Given the dependency layer the dev stack synthesized
    folder = dev.stack.workflow.dependency_layer.folder
    site = folder / "python"
    # When its packages are listed
    found = {}
    for info in site.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        found[name.lower().replace("_", "-")] = version
    # Then they are exactly the pinned ones
    assert found == layer.pins()
    # what the stages never load is gone
    assert not list(site.glob("pyarrow/libarrow_flight.so*"))
    assert not list(site.glob("pyarrow/include"))
    assert not [p for p in site.rglob("tests") if p.is_dir()]
    # the codecs Sluice writes are in this pyarrow (the managed pandas layer's has neither)
    assert list(site.glob("pyarrow/libarrow.so*"))


def test_code_and_layer_fit_lambda_unzipped_limit(dev: Synth) -> None:
    # Given the trusted function's code and the dependency layer of the dev stack
    key = dev.properties(dev.function_id("trusted"))["Code"]["S3Key"]
    code = dev.outdir / f"asset.{key.removesuffix('.zip')}"
    # When their unzipped sizes are added
    total = layer.size_bytes(dev.stack.workflow.dependency_layer.folder) + layer.size_bytes(code)
    # Then they fit Lambda's 250 MiB limit
    assert total < LAMBDA_UNZIPPED_LIMIT


def test_the_trimmed_layer_runs_the_stages(tmp_path: Path) -> None:
    # Given the layer built for this machine and Python (the same pins and trimming)
    arch = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    folder = layer.build(arch, version)
    # When a fresh interpreter with only the layer and the project's code runs a stage
    script = textwrap.dedent(
        """
        import sys, tempfile
        from datetime import UTC, datetime
        from pathlib import Path
        import pyarrow as pa, pyarrow.parquet as pq
        assert pa.__file__.startswith(sys.argv[1]), pa.__file__
        from sluice.config import CONTRACTS_DIR
        from sluice.contracts import find_contract
        from sluice.formats import read_file
        from sluice.stages import trusted
        work = Path(tempfile.mkdtemp())
        csv = work / "t.csv"
        csv.write_text("id,name,amount,date,category\\n1,A,1.5,2024-01-15,Sales\\n")
        _, table = read_file(csv, "t.csv")
        ctx = trusted.RunContext("s3://r/t.csv", "v", "x", datetime(2024, 2, 1, tzinfo=UTC))
        result = trusted.transform(table, find_contract("transactions", CONTRACTS_DIR), ctx, work)
        pq.write_table(table, work / "s.parquet", compression="lz4")
        print(result.rows_trusted, pq.ParquetFile(result.trusted[next(iter(result.trusted))].path)
              .metadata.row_group(0).column(0).compression)
        """
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", script, str(folder / "python")],
        env={"PYTHONPATH": f"{folder / 'python'}:{PROJECT_ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    # Then it reads, transforms and writes zstd and lz4 Parquet
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "1 ZSTD", "")

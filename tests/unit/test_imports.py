"""Importing a handler loads what its stage runs and nothing else: no pandas anywhere, no Arrow
in the starter, no Trusted engine outside Trusted, no Delivery logic in Validate.

Each handler is loaded in a fresh interpreter, from its file, as the Lambda runtime loads it.
A module counts as imported when it is in `sys.modules` afterwards or when an import of it was
attempted: pandas is not a Lambda dependency and may be missing here, but an attempt to import
it is the cold start it would cost where it is installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache

import pytest

from sluice import pipeline, starter
from sluice.config import PROJECT_ROOT

STAGES = ("starter", "validate", "trusted", "delivery")

# The modules worth knowing about: what dominates an import, or what a stage must not load.
WATCHED = {
    "pandas",
    "openpyxl",
    "pyarrow",
    "pyarrow.csv",
    "pyarrow.compute",
    "numpy",
    "yaml",
    "boto3",
    "aws_lambda_powertools.utilities.batch",
    "sluice.contracts",
    "sluice.pipeline",
    "sluice.formats",
    "sluice.stages.trusted",
    "sluice.stages.delivery",
}
# pyiceberg (and sluice.tables, which loads it) is the committer's alone: 4.6 times the import
# time of pyarrow.parquet (docs/architecture.md, "Iceberg tables").
TABLES = {"pyiceberg", "sluice.tables.catalog", "sluice.tables.commit", "sluice.tables.maintenance"}
NOWHERE = {"pandas", "openpyxl", *TABLES}
FORBIDDEN = {
    "starter": NOWHERE
    | {"pyarrow", "numpy", "yaml", "boto3", "sluice.pipeline", "sluice.contracts"},
    "validate": NOWHERE | {"sluice.stages.trusted", "sluice.stages.delivery"},
    "trusted": NOWHERE | {"yaml", "sluice.formats", "pyarrow.csv"},
    "delivery": NOWHERE
    | {"sluice.stages.trusted", "yaml", "boto3", "sluice.formats", "pyarrow.csv"},
}
# Each workflow handler imports its own stage's edge; the readers only Validate's does.
# (Clients are botocore's; boto3 comes with its managed transfers, for the stages that move
# whole files; PyYAML only where contracts are read from YAML.)
WORKFLOW_STAGE = {"pyarrow", "numpy", "sluice.contracts", "sluice.pipeline"}
EXPECTED = {
    "starter": {"aws_lambda_powertools.utilities.batch"},
    "validate": WORKFLOW_STAGE | {"yaml", "boto3", "sluice.formats", "pyarrow.csv"},
    "trusted": WORKFLOW_STAGE
    | {"boto3", "sluice.stages.trusted", "sluice.stages.delivery", "pyarrow.compute"},
    "delivery": WORKFLOW_STAGE | {"sluice.stages.delivery", "pyarrow.compute"},
}

CHILD = """
import importlib.util, json, sys

attempted = set()

class Recorder:
    # First on sys.meta_path: sees every import that is not already done, then lets the
    # real finders answer.
    def find_spec(self, name, path=None, target=None):
        attempted.add(name)
        return None

sys.meta_path.insert(0, Recorder())
stage, path = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("sluice_function_" + stage, path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(attempted | set(sys.modules))))
"""


@cache
def imported_by(stage: str) -> frozenset[str]:
    """The modules loading functions/<stage>/handler.py imports (or tries to)."""
    handler = PROJECT_ROOT / "functions" / stage / "handler.py"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, stage, str(handler)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return frozenset(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("stage", STAGES)
def test_a_handler_imports_none_of_the_modules_its_stage_does_not_need(stage: str) -> None:
    # Given a fresh interpreter
    # When it loads the stage's handler
    imported = imported_by(stage)
    # Then none of the modules the stage must not load was imported, nor tried
    assert imported & FORBIDDEN[stage] == set()


@pytest.mark.parametrize("stage", STAGES)
def test_no_handler_imports_pyiceberg(stage: str) -> None:
    # Given a fresh interpreter
    # When it loads the stage's handler
    imported = imported_by(stage)
    # Then neither pyiceberg nor a module of it, nor Sluice's table modules, was imported or tried
    assert {m for m in imported if m.split(".")[0] == "pyiceberg"} == set()
    assert imported & TABLES == set()


@pytest.mark.parametrize("stage", STAGES)
def test_a_handler_imports_exactly_the_heavy_modules_its_stage_runs_with(stage: str) -> None:
    # Given a fresh interpreter
    # When it loads the stage's handler
    imported = imported_by(stage)
    # Then of the watched modules it imported its stage's own, at init, and only those
    assert imported & WATCHED == EXPECTED[stage]


def test_the_starters_names_are_still_found_in_the_pipeline_module() -> None:
    # Given the starter's edge moved to sluice.starter
    # When its names are read from sluice.pipeline, where callers found them before
    # Then they are the starter's own
    assert pipeline.StartOutcome is starter.StartOutcome
    assert pipeline.start_executions is starter.start_executions


def test_the_pipeline_module_still_refuses_names_it_does_not_have() -> None:
    # Given sluice.pipeline, which looks the starter's names up on demand
    # When another name is read
    # Then it is an AttributeError, as for any module
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        _ = pipeline.no_such_name  # type: ignore[attr-defined]

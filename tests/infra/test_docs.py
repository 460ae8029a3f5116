"""What docs/deploy.md says of the stack is what the stack synthesizes."""

from __future__ import annotations

import re

from sluice.config import PROJECT_ROOT
from tests.infra.synth import Synth


def test_deploy_doc_counts_the_alarms_the_stack_has(dev: Synth, prod: Synth) -> None:
    # Given the alarm count docs/deploy.md states
    text = (PROJECT_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    (stated,) = re.findall(r"(\d+) alarms", text)
    # Then both environments synthesize exactly that many
    assert len(dev.resources("AWS::CloudWatch::Alarm")) == int(stated) == 15
    assert len(prod.resources("AWS::CloudWatch::Alarm")) == int(stated)

"""X-Ray: the stack turns on what the services trace by themselves, the code adds no tracer,
and the docs say so (infra/tracing.py)."""

from __future__ import annotations

import ast

from infra import tracing
from sluice.config import PROJECT_ROOT, STAGES
from tests.infra.synth import Synth

# What docs/architecture.md and docs/deploy.md say of tracing, word for word.
DOCUMENTED = "active tracing, no X-Ray SDK in the functions"
TRACER_MODULES = ("aws_xray_sdk", "aws_lambda_powertools.tracing")


def _imports(path: str) -> set[str]:
    tree = ast.parse((PROJECT_ROOT / path).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_functions_and_the_state_machine_are_traced_by_their_services(dev: Synth) -> None:
    # Given the dev stack
    # Then every stage function and the state machine trace as infra/tracing.py says
    for stage in STAGES:
        config = dev.properties(dev.function_id(stage))["TracingConfig"]
        assert config == {"Mode": tracing.FUNCTION_TRACING.value.capitalize()} == {"Mode": "Active"}
    state_machine = dev.properties(dev.state_machine_id())
    assert state_machine["TracingConfiguration"] == {"Enabled": tracing.STATE_MACHINE_TRACING}


def test_no_code_loads_an_xray_sdk() -> None:
    # Given every module the functions are packaged with, and the layer's pins
    modules = [
        path.relative_to(PROJECT_ROOT).as_posix()
        for folder in ("sluice", "functions")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
    ]
    pins = (PROJECT_ROOT / "requirements" / "lambda.txt").read_text(encoding="utf-8")
    # Then none imports an X-Ray SDK or Powertools' Tracer, and the layer holds none
    for module in modules:
        imported = _imports(module)
        assert not {
            name
            for name in imported
            if name.startswith(TRACER_MODULES) or name == "aws_lambda_powertools.Tracer"
        }, module
    assert "aws-xray-sdk" not in pins


def test_the_docs_describe_the_tracing_the_stack_has() -> None:
    # Given the architecture and deploy docs
    for doc in ("architecture.md", "deploy.md"):
        text = (PROJECT_ROOT / "docs" / doc).read_text(encoding="utf-8")
        # Then each says the functions are traced by Lambda alone
        assert DOCUMENTED in text, doc

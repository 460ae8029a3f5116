"""Fails loudly when a moto upgrade moves what `sluice.local._moto` relies on."""

from __future__ import annotations

import inspect

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.config import default_user_config
from moto.settings import moto_server_port

from sluice.local import _moto


def test_config_switches_exist() -> None:
    assert "execute_state_machine" in default_user_config["stepfunctions"]
    assert "use_docker" in default_user_config["lambda"]


def test_lambda_simple_backend_invoke_has_the_signature_we_replace() -> None:
    params = list(inspect.signature(_moto._original_invoke).parameters)
    assert params == ["self", "function_name", "qualifier", "body", "headers", "response_headers"]


def test_interpreter_reads_the_server_port_from_moto_port(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MOTO_PORT", "45678")
    assert moto_server_port() == "45678"


def test_dispatcher_installs_and_restores() -> None:
    calls: list[tuple[str, bytes]] = []

    def dispatcher(name: str, body: bytes) -> tuple[bytes, str | None]:
        calls.append((name, body))
        return b'{"errorType": "X"}', "Unhandled"

    _moto.install_dispatcher(dispatcher)
    try:
        headers: dict[str, str] = {}
        backend = LambdaSimpleBackend.__new__(LambdaSimpleBackend)
        payload = backend.invoke("fn", None, b"{}", {}, headers)
        assert (payload, headers, calls) == (
            b'{"errorType": "X"}',
            {"x-amz-function-error": "Unhandled"},
            [("fn", b"{}")],
        )
    finally:
        _moto.remove_dispatcher()
    assert LambdaSimpleBackend.invoke is _moto._original_invoke

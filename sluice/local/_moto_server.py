"""moto's server, as the local cloud runs it: connections kept alive, a port taken before it
opens, and a stop that does not wait for a poll (see `sluice.local._moto`)."""

from __future__ import annotations

import contextlib
import functools
import io
import selectors
import socket
import threading
from typing import Any

# -- the server ---------------------------------------------------------------------------------
# moto's threaded server loops in socketserver's `serve_forever`, which looks at a stop request
# only between polls of half a second: stopping is answered at once when a connection wakes it.


# -- connections kept alive --------------------------------------------------------------------
# Werkzeug's server closes every connection after one response (it cannot tell where a request
# body it did not read ends), and after the response it drains the socket for up to 10 ms. A
# client of S3 keeps its connections open, so locally every request paid a TCP connect, a server
# thread and that drain. The local cloud's handler reads a request's body whole before the
# application runs (its length is known: Content-Length), so the next request starts where the
# body ends, and keeps HTTP/1.1 connections open. A chunked body, a short one, or a client that
# asks to close is served as before: one request, then close.

_keep = threading.local()


class _NoDrain:
    """`werkzeug.serving.selectors` for a kept-alive request: a socket that reports nothing to
    drain (the body is already read; what follows is the client's next request)."""

    EVENT_READ = selectors.EVENT_READ

    class _Idle:
        def register(self, *args: Any) -> None:
            pass

        def select(self, timeout: float | None = None) -> list[Any]:
            return []

        def close(self) -> None:
            pass

    def DefaultSelector(self) -> Any:  # the name werkzeug calls
        return self._Idle() if getattr(_keep, "alive", False) else selectors.DefaultSelector()


def _keep_alive_handler() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveHandler(MotoRequestHandler):
        def setup(self) -> None:
            super().setup()
            # A response is written as headers, then body: with Nagle's algorithm the body
            # waits for the client's (delayed) acknowledgement of the headers, 40 ms a request
            # on a kept-alive connection, so both go out at once.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def make_environ(self) -> dict[str, Any]:
            environ: dict[str, Any] = super().make_environ()
            _keep.alive = False
            if environ.get("wsgi.input_terminated"):  # chunked: where it ends is werkzeug's
                return environ
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return environ
            body = self.rfile.read(length) if length > 0 else b""
            environ["wsgi.input"] = io.BytesIO(body)
            _keep.alive = (
                len(body) == max(length, 0)
                and self.request_version == "HTTP/1.1"
                and self.headers.get("Connection", "").lower() != "close"
            )
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            if keyword.lower() == "connection" and getattr(_keep, "alive", False):
                return  # werkzeug's `close`: this connection stays open
            super().send_header(keyword, value)

        def handle_one_request(self) -> None:
            _keep.alive = False
            try:
                super().handle_one_request()
            finally:
                if not getattr(_keep, "alive", False):
                    self.close_connection = True
                _keep.alive = False

    return KeepAliveHandler


@functools.cache
def keep_connections_alive() -> None:
    """Moto's servers (plain and gated) answer with the keep-alive handler from here on."""
    import moto.moto_server.threaded_moto_server as threaded
    import werkzeug.serving

    handler = _keep_alive_handler()
    setattr(threaded, "MotoRequestHandler", handler)  # noqa: B010
    setattr(werkzeug.serving, "selectors", _NoDrain())  # noqa: B010


def server(host: str, port: int) -> Any:
    from moto.server import ThreadedMotoServer

    keep_connections_alive()
    return ThreadedMotoServer(ip_address=host, port=port, verbose=False)


def gated_server(host: str, port: int) -> Any:
    """moto's server on a port taken at once (so its number is known, and no one else takes
    it) that accepts connections only once `start()` is called: a client that waits for the
    port finds the cloud provisioned, never half-built."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    keep_connections_alive()
    handler = _keep_alive_handler()

    class GatedServer(ThreadedMotoServer):
        def __init__(self) -> None:
            super().__init__(ip_address=host, port=port, verbose=False)
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))  # bound, not listening: connections are refused

        def _server_entry(self) -> None:
            self._socket.listen(128)
            self._server = make_server(
                host,
                self._socket.getsockname()[1],
                DomainDispatcherApplication(create_backend_app),
                True,
                request_handler=handler,
                fd=self._socket.fileno(),
            )
            self._server_ready_event.set()
            self._server.serve_forever()

        def get_host_and_port(self) -> tuple[str, int]:
            bound = self._socket.getsockname()
            return str(bound[0]), int(bound[1])

        def stop(self) -> None:
            if self._thread is not None:
                super().stop()
            self._socket.close()

    return GatedServer()


def stop_server(running: Any) -> None:
    host, port = running.get_host_and_port()
    if getattr(running, "_thread", None) is None:  # never started: nothing to wake
        running.stop()
        return
    stopping = threading.Thread(target=running.stop, name="moto-stop", daemon=True)
    stopping.start()
    while stopping.is_alive():
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            pass
        stopping.join(0.01)

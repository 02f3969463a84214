"""Small HTTP listeners for the prometheus, health and ready plugins.

A threaded WSGI server in a daemon thread, so an HTTP client never touches the DNS
event loop. Addresses follow Go's ``host:port`` rules (``:8080`` = all interfaces).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def split_host_port(address: str) -> tuple[str, int]:
    """Go's ``net.SplitHostPort`` rules: ``host:port``, ``[v6]:port``, ``:port``."""
    if address.startswith("["):
        host, sep, port = address[1:].partition("]:")
        if not sep:
            raise ValueError(f"address {address}: missing port in address")
    else:
        host, sep, port = address.rpartition(":")
        if not sep:
            raise ValueError(f"address {address}: missing port in address")
        if ":" in host:
            raise ValueError(f"address {address}: too many colons in address")
    if port == "":
        # Go accepts an empty port ("localhost:"); listening on it picks a free port.
        return host, 0
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"address {address}: invalid port")
    return host, int(port)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        # Several blocks may name one port with different host strings
        # ("localhost:9153" and ":9153"); CoreDNS relies on SO_REUSEPORT for that.
        if hasattr(socket, "SO_REUSEPORT"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def route(path: str, app: WSGIApp) -> WSGIApp:
    """``app`` at exactly ``path``; ``404 page not found`` elsewhere (Go's mux text)."""

    def routed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != path:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"404 page not found\n"]
        return app(environ, start_response)

    return routed


class HTTPListener:
    """Serve one WSGI app on one address until :meth:`stop`."""

    def __init__(self, address: str, app: WSGIApp) -> None:
        self.address = address
        self.app = app
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_port) if self._server is not None else 0

    def start(self) -> None:
        host, port = split_host_port(self.address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(_Threading):
            address_family = family

        bind_host = host or ("::" if family == socket.AF_INET6 else "0.0.0.0")
        self._server = make_server(bind_host, port, self.app, Server, handler_class=_Quiet)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"http {self.address}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def text_app(status: Callable[[], tuple[int, str]]) -> WSGIApp:
    """A WSGI app answering ``status()`` → (code, body) as plain text."""
    reasons = {200: "OK", 503: "Service Unavailable"}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        code, body = status()
        start_response(f"{code} {reasons.get(code, '')}", [("Content-Type", "text/plain; charset=utf-8")])
        return [body.encode()]

    return app


def address_arg(directive: Any, plugin: str, default: str) -> str:
    """The optional ``host:port`` argument of prometheus, health and ready: at most
    one, checked with Go's rules, errors at the offending token."""
    args = directive.args
    if len(args) > 1:
        raise directive.arg_error(plugin)
    if not args:
        return default
    try:
        split_host_port(args[0])
    except ValueError as exc:
        raise directive.arg_tokens[0].error(str(exc), plugin=plugin) from None
    return str(args[0])


def acquire(engine: Any, kind: str, address: str, make_app: Callable[[], WSGIApp]) -> HTTPListener:
    """The engine's listener of this kind on ``address``, started on first use:
    blocks naming the same address share one listener."""
    listeners: dict[str, HTTPListener] = engine.shared.setdefault(f"{kind}.listeners", {})
    lst = listeners.get(address)
    if lst is None:
        lst = listeners[address] = HTTPListener(address, make_app())
        lst.start()
    return lst


def release(engine: Any, kind: str, address: str, listener: HTTPListener | None) -> None:
    """Stop a listener got from :func:`acquire` (the first block to stop closes it)."""
    if listener is None:
        return
    if engine is not None:
        engine.shared.get(f"{kind}.listeners", {}).pop(address, None)
    listener.stop()

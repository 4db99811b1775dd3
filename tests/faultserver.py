"""A scriptable HTTP/1.1 server on 127.0.0.1 for the faults the sandbox does not make.

Each request takes the next scripted `Reply` for its path (the last one repeats), and is
recorded with its headers and body so tests can assert what reached the server.

Hostile modes, for the security tests: `trickle-headers` (one header line every `trickle`
seconds, for ever), `trickle-body` (one byte of body every `trickle` seconds), and `huge`
(`size` bytes of body streamed without holding them; with `chunked` no Content-Length).
Header values go out as given, control characters and all.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRICKLE_LIMIT = 30.0


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "answer"  # answer | reset | close | hang | trickle-headers | trickle-body | huge
    delay: float = 0.0
    trickle: float = 0.2  # seconds between the bytes or header lines of a trickle
    size: int = 0  # bytes of body for `huge`
    chunked: bool = False  # `huge` without a Content-Length (chunked transfer coding)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FaultServer:
    def __init__(self) -> None:
        self.script: dict[str, list[Reply]] = {}
        self.responders: dict[str, Callable[[Seen], Reply]] = {}
        self.seen: list[Seen] = []
        self.streamed = 0  # body bytes a `huge` reply got out before the client hung up
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def on(self, path: str, *replies: Reply) -> None:
        self.script[path] = list(replies)

    def respond(self, path: str, responder: Callable[[Seen], Reply]) -> None:
        """Answer every request for `path` with what `responder` makes of it (it runs on
        the request's own thread, so it may block to hold the request in flight)."""
        self.responders[path] = responder

    def count(self, method: str | None = None) -> int:
        return sum(1 for s in self.seen if method is None or s.method == method)

    def next_reply(self, path: str) -> Reply:
        with self._lock:
            replies = self.script.get(path.split("?")[0])
            if not replies:
                return Reply(404, {"statusCode": 404, "error": "Not Found", "message": "no route"})
            return replies.pop(0) if len(replies) > 1 else replies[0]


def _handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Seen(self.command, self.path, dict(self.headers.items()), body)
            with server._lock:
                server.seen.append(seen)
            responder = server.responders.get(self.path.split("?")[0])
            reply = responder(seen) if responder else server.next_reply(self.path)
            if reply.delay:
                server._stop.wait(reply.delay)
            if reply.action == "reset":
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True
                return
            if reply.action == "close":
                self.close_connection = True
                return
            if reply.action == "hang":
                server._stop.wait(30)
                self.close_connection = True
                return
            if reply.action.startswith("trickle") or reply.action == "huge":
                self._hostile(reply)
                return
            payload = reply.body
            if isinstance(payload, (dict, list)):
                data = json.dumps(payload).encode()
                content_type = "application/json"
            else:
                data = payload.encode() if isinstance(payload, str) else payload
                content_type = "text/html" if data.lstrip().startswith(b"<") else "application/json"
            self.send_response(reply.status)
            headers = {"Content-Type": content_type, "Content-Length": str(len(data))}
            headers.update(reply.headers)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _hostile(self, reply: Reply) -> None:
            self.close_connection = True
            # A trickle gives up after TRICKLE_LIMIT s, so a client that fails to bound its
            # time fails its test (with another message) instead of hanging the suite.
            until = time.monotonic() + TRICKLE_LIMIT

            def trickling() -> bool:
                return not server._stop.wait(reply.trickle) and time.monotonic() < until

            try:
                if reply.action == "trickle-headers":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    line = 0
                    while trickling():
                        line += 1
                        self.wfile.write(f"X-Pad-{line}: {'x' * 8}\r\n".encode())
                        self.wfile.flush()
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if reply.action == "trickle-body":
                    self.send_header("Content-Length", "1000000")
                    self.end_headers()
                    self.wfile.flush()
                    while trickling():
                        self.wfile.write(b" ")
                        self.wfile.flush()
                    return
                if reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(reply.size))
                self.end_headers()
                block = b" " * 65536
                sent = 0
                while sent < reply.size and not server._stop.is_set():
                    piece = block[: reply.size - sent]
                    if reply.chunked:
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    else:
                        self.wfile.write(piece)
                    sent += len(piece)
                    server.streamed += len(piece)
                if reply.chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except OSError:  # the client hung up, as it should
                pass

        do_GET = do_POST = _serve

    return Handler


@contextmanager
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.httpd = httpd
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server._stop.set()
        httpd.shutdown()
        httpd.server_close()
        time.sleep(0)

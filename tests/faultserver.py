"""A scriptable HTTP/1.1 server on 127.0.0.1 for the faults the sandbox does not make.

Each request takes the next scripted `Reply` for its path (the last one repeats), and is
recorded with its headers and body so tests can assert what reached the server.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "answer"  # answer | reset | close | hang
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FaultServer:
    def __init__(self) -> None:
        self.script: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def on(self, path: str, *replies: Reply) -> None:
        self.script[path] = list(replies)

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
            server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            reply = server.next_reply(self.path)
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

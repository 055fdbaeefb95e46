"""A fault-injecting HTTP proxy for S3 tests (issue 12): it listens on 127.0.0.1, forwards every
request unchanged (Host header included, so SigV4 signatures still verify) to a real S3 server on
127.0.0.1, and at a set rate per HTTP method injects one of:

    "503"    a 503 SlowDown answer (the request never reaches the server)
    "500"    a 500 InternalError answer (the request never reaches the server)
    "reset"  the connection reset without an answer (after the server handled the request)
    "cut"    the server's answer with its body cut in half, then the connection closed
    "delay"  the server's answer, `delay` seconds late

Seeded: the same requests in the same order get the same faults; `paths` limits faults to
requests whose path holds that text; `after` lets that many matching requests through first, `max_faults` stops injecting after that many. `counts` says what was
injected. Loopback only.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("503", "500", "reset", "cut", "delay")
_ERRORS = {
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
}


class FaultProxy:
    def __init__(self, upstream_port: int, *, rate: float = 0.0, faults: tuple[str, ...] = FAULTS,
                 methods: tuple[str, ...] | None = None, delay: float = 0.5, seed: int = 0,
                 max_faults: int | None = None, after: int = 0, paths: str | None = None):
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; choose from {FAULTS}")
        self.upstream_port, self.rate, self.faults, self.methods = upstream_port, rate, faults, methods
        self.delay, self.max_faults, self.after, self.paths = delay, max_faults, after, paths
        self._matched = 0
        self.counts: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="fault-proxy")

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _choose(self, method: str, path: str = "") -> str | None:
        with self._lock:
            if self.methods is not None and method not in self.methods:
                return None
            if self.paths is not None and self.paths not in path:
                return None
            self._matched += 1
            if self._matched <= self.after:
                return None
            if self.max_faults is not None and sum(self.counts[f] for f in FAULTS) >= self.max_faults:
                return None
            if self._random.random() >= self.rate:
                return None
            fault = self._random.choice(self.faults)
            self.counts[fault] += 1
            self.counts[f"{method} {fault}"] += 1
            return fault

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raw = b""
                    while True:  # forwarded as it came: chunk sizes, chunks and trailers
                        line = self.rfile.readline()
                        raw += line
                        size = int(line.split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while True:
                                trailer = self.rfile.readline()
                                raw += trailer
                                if trailer in (b"\r\n", b"\n", b""):
                                    return raw
                        raw += self.rfile.read(size + 2)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _reset(self) -> None:
                # SO_LINGER 0: close() sends RST, the client sees "connection reset by peer"
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

            def _handle(self) -> None:
                body = self._body()
                fault = proxy._choose(self.command, self.path)
                if fault in _ERRORS:
                    status, code, message = _ERRORS[fault]
                    payload = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                               f"<Message>{message}</Message></Error>").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        upstream.putheader(name, value)
                    upstream.endheaders(body)
                    response = upstream.getresponse()
                    data = response.read()
                    headers = response.getheaders()
                    status, reason = response.status, response.reason
                finally:
                    upstream.close()
                if fault == "reset":
                    self._reset()
                    return
                if fault == "delay":
                    time.sleep(proxy.delay)  # a slow answer is the fault itself
                self.send_response(status, reason)
                for name, value in headers:
                    if name.lower() in ("transfer-encoding", "connection"):
                        continue
                    if name.lower() == "content-length" and self.command != "HEAD":
                        continue  # set below from the body as read (HEAD keeps the object's size)
                    self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if fault == "cut" and self.command != "HEAD" and len(data) > 1:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self._reset()
                    return
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        return Handler

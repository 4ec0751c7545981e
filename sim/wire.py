"""One kept-alive HTTP/1.1 connection for small JSON requests, at the cost of one send and one receive.

Why not ``requests`` or ``http.client``: per request they cost ~3x (``http.client``: headers and
body in two sends, an email-parser pass over the answer's headers) and ~15x (``requests``) the client
CPU of this one (42 us vs 120 us vs ~700 us against the same local server), which is on par with wrk.
The simulator must not be what limits the service it measures, and it sends a few fixed shapes of
request, so it writes them itself.
Answers are read per HTTP/1.1 (Content-Length, chunked, or until the server closes).

Like urllib3, a connection the server closed while idle is noticed before it is reused, and a
request that reached the server is never sent twice. A server may also close an idle connection
just as a request is sent on it (the request then fails, unanswered): a connection idle for longer
than `max_idle`, below the keep-alive timeouts of common servers, is replaced before it is used.
"""

from __future__ import annotations

import select
import socket
import ssl
import time

MAX_HEAD = 65536
MAX_IDLE = 1.0  # seconds; servers close idle keep-alive connections after 2 (gunicorn's default), 5, 75 s


class WireError(Exception):
    """The exchange failed; the message says how."""


class Connection:
    def __init__(
        self,
        host: str,
        port: int,
        https: bool = False,
        timeout: float = 10.0,
        attempts: int = 4,
        max_idle: float = MAX_IDLE,
    ) -> None:
        self.host, self.port, self.https = host, port, https
        self.timeout = timeout
        self.attempts = attempts  # connects tried, with backoff, before giving up
        self.max_idle = max_idle  # seconds unused after which a connection is not trusted to be open
        self._sock: socket.socket | None = None
        self._poll: select.poll | None = None
        self._buffer = bytearray()
        self._opened = self._used = 0.0
        name = f"[{host}]" if ":" in host else host  # an IPv6 address is bracketed, as in its URL
        self._host_header = name if port in (80, 443) else f"{name}:{port}"

    def _open(self) -> socket.socket:
        failures = 0
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            except OSError as error:
                failures += 1
                if failures >= self.attempts:
                    raise WireError(f"cannot connect to {self.host}:{self.port}: {error.strerror or error}") from None
                time.sleep(0.2 * 2 ** (failures - 1))
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.https:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
            self._poll = select.poll()
            self._poll.register(sock, select.POLLIN)
            self._buffer.clear()
            self._opened = self._used = time.monotonic()
            return sock

    def age(self) -> float:
        """Seconds since the open connection was opened (0 when none is open)."""
        return time.monotonic() - self._opened if self._sock is not None else 0.0

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._poll = None
        self._buffer.clear()

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request, return the answer's status and body."""
        idle = time.monotonic() - self._used
        if self._sock is not None and self._poll is not None and (self._poll.poll(0) or idle > self.max_idle):
            self.close()  # readable: the server closed it (or sent what we never asked for); or it may as we send
        if self._sock is None:
            self._sock = self._open()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self._host_header}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        try:
            self._sock.sendall(head.encode("latin-1") + b"\r\n" + (body or b""))
            status, headers, content = self._read_answer()
        except (OSError, ValueError) as error:
            self.close()
            raise WireError(f"{type(error).__name__}: {error}") from None
        self._used = time.monotonic()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, content

    def _fill(self) -> None:
        assert self._sock is not None
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    def _take_line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD:
                raise ValueError("answer line too long")
            self._fill()
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _read_answer(self) -> tuple[int, dict[str, str], bytes]:
        while True:  # skip informational (1xx) answers
            version, status_text, *_ = self._take_line().decode("latin-1").split(" ", 2) + [""]
            if not version.startswith("HTTP/") or not status_text.isdigit():
                raise ValueError(f"not an HTTP answer: {version} {status_text}")
            headers: dict[str, str] = {}
            while line := self._take_line():
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            status = int(status_text)
            if status >= 200:
                break
        if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
            headers["connection"] = "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            content = bytearray()
            while size := int(self._take_line().split(b";")[0], 16):
                content += self._take(size)
                self._take_line()
            while self._take_line():  # trailers
                pass
            return status, headers, bytes(content)
        if "content-length" in headers:
            return status, headers, self._take(int(headers["content-length"]))
        if status in (204, 304):
            return status, headers, b""
        try:  # no framing: the body runs until the server closes
            while True:
                self._fill()
        except ConnectionError:
            pass
        headers["connection"] = "close"
        content = bytes(self._buffer)
        self._buffer.clear()
        return status, headers, content

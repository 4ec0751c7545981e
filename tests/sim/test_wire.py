from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from sim.remote import RemoteAgent
from sim.wire import Connection, WireError


class ScriptedServer:
    """A real TCP server answering each request with the next scripted bytes (then closing if told)."""

    def __init__(self, answers: list[tuple[bytes, bool]], host: str = "127.0.0.1") -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_request(self, conn: socket.socket, pending: bytearray) -> bytes | None:
        while b"\r\n\r\n" not in pending:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            pending += chunk
        head, _, rest = bytes(pending).partition(b"\r\n\r\n")
        fields = dict(line.lower().split(b":", 1) for line in head.split(b"\r\n")[1:])
        length = int(fields.get(b"content-length", b"0"))
        while len(rest) < length:
            rest += conn.recv(65536)
        pending[:] = rest[length:]
        return head + b"\r\n\r\n" + rest[:length]

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            pending = bytearray()
            with conn:
                while self.answers:
                    request = self._read_request(conn, pending)
                    if request is None:
                        break
                    self.requests.append(request)
                    answer, close = self.answers.pop(0)
                    conn.sendall(answer)
                    if close:
                        break

    def stop(self) -> None:
        self.listener.close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[ScriptedServer] = []

    def start(*answers: tuple[bytes, bool], host: str = "127.0.0.1") -> ScriptedServer:
        servers.append(ScriptedServer(list(answers), host))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_request_bytes_and_keep_alive(serve):
    server = serve((ok(b'{"track": 1}'), False), (ok(b'{"track": 2}'), False))
    connection = Connection("127.0.0.1", server.port)
    assert connection.request("POST", "/next/7", b'{"track": 5, "time": 0.5}') == (200, b'{"track": 1}')
    assert connection.request("POST", "/last/7", b'{"track": 1, "time": 0.25}') == (200, b'{"track": 2}')
    assert server.connections == 1
    assert server.requests[0] == (
        b"POST /next/7 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b'Content-Length: 25\r\n\r\n{"track": 5, "time": 0.5}' % server.port
    )


def test_an_ipv6_host_is_bracketed_in_the_host_header(serve):
    server = serve((ok(b'{"status": "alive"}'), False), host="::1")
    RemoteAgent(f"http://[::1]:{server.port}").check()
    assert server.requests == [b"GET / HTTP/1.1\r\nHost: [::1]:%d\r\n\r\n" % server.port]


def test_chunked_answer_and_informational_answers(serve):
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=1\r\n, world\r\n0\r\n\r\n"
    server = serve((b"HTTP/1.1 100 Continue\r\n\r\n" + chunked, False), (ok(b"again"), False))
    connection = Connection("127.0.0.1", server.port)
    assert connection.request("GET", "/") == (200, b"hello, world")
    assert connection.request("GET", "/") == (200, b"again")
    assert server.connections == 1


def test_close_delimited_and_connection_close_answers_reconnect(serve):
    server = serve(
        (b"HTTP/1.0 200 OK\r\n\r\nuntil close", True),
        (ok(b"bye", b"Connection: close\r\n"), True),
        (ok(b"fresh"), False),
    )
    connection = Connection("127.0.0.1", server.port)
    assert connection.request("GET", "/a") == (200, b"until close")
    assert connection.request("GET", "/b") == (200, b"bye")
    assert connection.request("GET", "/c") == (200, b"fresh")
    assert server.connections == 3


def test_a_connection_idle_too_long_is_replaced_before_the_server_drops_it_unanswered():
    """The race a keep-alive timeout sets up: the server closes an idle connection just after a request was sent on
    it, without answering. A connection idle for longer than max_idle is not reused."""
    accepted: list[socket.socket] = []
    sending = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener:
            while len(accepted) < 2:
                conn, _ = listener.accept()
                accepted.append(conn)
                while b"\r\n\r\n" not in conn.recv(65536):
                    pass
                conn.sendall(ok(b"answered"))
                if len(accepted) == 1:  # the keep-alive timeout, as the next request goes out: closed unread
                    sending.wait(timeout=10)
                    time.sleep(0.1)
                    conn.close()

    threading.Thread(target=serve, daemon=True).start()
    connection = Connection("127.0.0.1", listener.getsockname()[1], timeout=2, max_idle=0.1)
    assert connection.request("GET", "/") == (200, b"answered")
    time.sleep(0.2)  # idle past max_idle; the server has not closed, so the connection looks open
    sending.set()
    assert connection.request("GET", "/") == (200, b"answered")
    assert len(accepted) == 2


@pytest.mark.parametrize("answer", [b"SMTP ready\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"])
def test_broken_answers_raise(serve, answer):
    server = serve((answer, True))
    with pytest.raises(WireError):
        Connection("127.0.0.1", server.port, timeout=2).request("GET", "/")


def test_nothing_listening_raises_after_the_retries():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(WireError, match=f"cannot connect to 127.0.0.1:{port}"):
        Connection("127.0.0.1", port, attempts=2).request("GET", "/")

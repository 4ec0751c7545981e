"""gunicorn's threaded worker, but a stopping worker closes its listening socket at once, and the requests
gunicorn answers itself are answered in JSON.

With `reuse_port` each worker listens on its own socket. gunicorn's worker, told to stop, only stops watching
that socket and closes it when it exits, up to a few seconds later while it finishes requests and kept-alive
connections: meanwhile the kernel still queues new connections on it, and resets them at the close. A client
(nginx) that sent a POST on such a connection cannot resend it. Closed at once, after the connections already
queued are taken, the socket leaves new connections to the workers still running, or refuses them when the
whole server stops, which nginx retries on another replica.

Told to quit (SIGQUIT, or SIGINT: a terminal's Ctrl-C reaches the worker as well as the master, which then sends
SIGQUIT), gthread's worker shuts its thread pool down inside the signal handler. The handler runs in the main thread,
which may be inside the pool's `submit`, holding the lock `shutdown` takes: the worker then waited for itself until
the master killed it after the graceful timeout (15 s; ~1 in 6 Ctrl-Cs of `botify serve`, CPython issue 121649).
This worker quits without that call (as gthread's did, requests under way then end as the process exits: a
listen logged after `worker_exit` closed the event log gets a 503).

gunicorn answers a request it cannot parse (a request line or headers beyond its limits, a malformed request line)
before the app sees it, with an HTML page; botify's clients get `{"message": ...}` for those too, as for every
other error.
"""

from __future__ import annotations

import json
import select

from gunicorn import util
from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import ThreadWorker


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answer (`gunicorn.util.write_error`, which its workers call), as JSON."""
    body = json.dumps({"message": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = write_json_error  # in the processes that load this worker class: gunicorn's master and workers


class DrainingThreadWorker(ThreadWorker):
    def handle_quit(self, sig, frame) -> None:
        """Quit at once, as every gunicorn worker does, without gthread's `tpool.shutdown()` in the signal handler."""
        Worker.handle_quit(self, sig, frame)

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if enabled or self.alive:  # a full worker pausing its accepts keeps its socket
            return
        for listener in self.sockets:
            if listener.sock is None:  # closed already
                continue
            while select.select([listener], [], [], 0)[0]:  # serve what was queued before the close
                before = self.nr_conns
                self.accept(listener)
                if self.nr_conns == before:  # nothing to take after all (a connection aborted meanwhile)
                    break
            listener.close()

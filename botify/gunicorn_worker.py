"""gunicorn's threaded worker, but a stopping worker closes its listening socket at once.

With `reuse_port` each worker listens on its own socket. gunicorn's worker, told to stop, only stops watching
that socket and closes it when it exits, up to a few seconds later while it finishes requests and kept-alive
connections: meanwhile the kernel still queues new connections on it, and resets them at the close. A client
(nginx) that sent a POST on such a connection cannot resend it. Closed at once, after the connections already
queued are taken, the socket leaves new connections to the workers still running, or refuses them when the
whole server stops, which nginx retries on another replica.
"""

from __future__ import annotations

import select

from gunicorn.workers.gthread import ThreadWorker


class DrainingThreadWorker(ThreadWorker):
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

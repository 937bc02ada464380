"""A loopback port that counts the connections made to it and closes each at once.

The proof that a command stopped before it connected anywhere, without a stopwatch: point
the command at `address`, run it, then `connections()` must be 0. The count is exact when
read: a client's connect() returns only once the kernel holds the connection for accept(),
and `connections()` accepts whatever is waiting before it answers. The serving thread only
closes connections as they come, so that a command that does connect fails fast.
"""
from __future__ import annotations

import selectors
import socket
import threading


class CountingListener:
    def __init__(self):
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.setblocking(False)
        self.port = self._server.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{self.port}"
        self._accepted = 0
        self._lock = threading.Lock()
        self._wake, self._waker = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="counting-listener", daemon=True)
        self._thread.start()

    def connections(self) -> int:
        with self._lock:
            while True:
                try:
                    connection, _ = self._server.accept()
                except BlockingIOError:
                    return self._accepted
                connection.close()
                self._accepted += 1

    def close(self) -> None:
        self._waker.send(b"x")
        self._thread.join()
        for sock in (self._server, self._wake, self._waker):
            sock.close()

    def __enter__(self) -> CountingListener:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            selector.register(self._wake, selectors.EVENT_READ)
            while not any(key.fileobj is self._wake for key, _ in selector.select()):
                self.connections()

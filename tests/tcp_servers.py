"""Two small TCP servers for tests, each on a thread of its own: one that accepts connections and
never answers (a server that hangs), and a proxy that passes bytes through to a real server while
counting how many client connections are open at once."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@contextlib.contextmanager
def _serving(listener: socket.socket, stop: threading.Event, handle: Callable[[socket.socket], None]) -> Iterator[None]:
    """Accept on `listener` until `stop`, each client handled by `handle` on a thread of its own."""

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(client,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@dataclass
class Silent:
    """Accepts every connection, reads what comes, answers nothing; notes how long each client
    stayed before it gave up and closed."""

    port: int = 0
    held_seconds: list[float] = field(default_factory=list)


@contextlib.contextmanager
def silent_server() -> Iterator[Silent]:
    listener = socket.create_server(("127.0.0.1", 0))
    state = Silent(port=listener.getsockname()[1])
    stop = threading.Event()

    def hold(client: socket.socket) -> None:
        accepted = time.monotonic()
        client.settimeout(0.2)
        with client:
            while not stop.is_set():
                try:
                    if not client.recv(65536):
                        break  # the client gave up
                except TimeoutError:
                    continue
                except OSError:
                    break
        state.held_seconds.append(time.monotonic() - accepted)

    with _serving(listener, stop, hold):
        yield state


@dataclass
class Proxy:
    """A client connection counts as open from its first bytes (the client's own start, after the
    TCP handshake) until either side ends it. The end is counted before the proxy passes it on: a
    client whose close() returned (asyncpg waits for the server to end the connection) has been
    counted out before it can open another, so the count never runs ahead of the client's."""

    port: int = 0
    open_now: int = 0
    most_at_once: int = 0
    total: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    events: list = field(default_factory=list)  # (time, "open" | "close", client address, open then)

    def _opened(self, state: dict) -> None:
        with self.lock:
            state["open"] = True
            self.open_now += 1
            self.total += 1
            self.most_at_once = max(self.most_at_once, self.open_now)
            self.events.append((time.monotonic(), "open", state["peer"], self.open_now))

    def _ended(self, state: dict) -> None:
        with self.lock:
            if state["open"] and not state["ended"]:
                state["ended"] = True
                self.open_now -= 1
                self.events.append((time.monotonic(), "close", state["peer"], self.open_now))


@contextlib.contextmanager
def counting_proxy(upstream_port: int) -> Iterator[Proxy]:
    """127.0.0.1:<proxy.port> forwards to 127.0.0.1:<upstream_port>."""
    listener = socket.create_server(("127.0.0.1", 0))
    proxy = Proxy(port=listener.getsockname()[1])
    stop = threading.Event()

    def pipe(source: socket.socket, target: socket.socket, state: dict, from_client: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if from_client and not state["open"]:
                    proxy._opened(state)
                target.sendall(data)
        proxy._ended(state)  # before the end reaches the other side
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def relay(client: socket.socket) -> None:
        state = {"open": False, "ended": False, "peer": client.getpeername()}
        try:
            with client, socket.create_connection(("127.0.0.1", upstream_port)) as server:
                back = threading.Thread(target=pipe, args=(server, client, state, False), daemon=True)
                back.start()
                pipe(client, server, state, True)
                back.join()
        except OSError:
            proxy._ended(state)

    with _serving(listener, stop, relay):
        yield proxy

"""gunicorn's gthread worker, except that a thread only ever gets a request already whole.

gthread hands a connection to a pool thread at its first byte; the thread then blocks, with
no deadline, in the TLS handshake and in reading the request. A dozen peers sending three
bytes each took all 8 threads of a worker, mutual TLS or not, and through kube-apiserver
every executor pod create then failed. Here the main loop, which already waits on every
socket, also does the handshake and reads the request without blocking, within
INTAKE_SECONDS; a stalled peer costs a socket and the bytes it sent, both bounded
(`worker_connections`, FREE_BYTES a connection, BUFFER_BUDGET_BYTES above that), never a
thread. The threads keep the work: judging, answering, the held refusals.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from typing import Any

from gunicorn import http, util
from gunicorn import sock as gunicorn_sock
from gunicorn.workers.gthread import TConn, ThreadWorker

from webhook.admission import MAX_BODY_BYTES
from webhook.review import error_body
from webhook.serving.framing import Framed, RequestFraming

log = logging.getLogger("airflow_pod_webhook.server")

# From a connection's accept (or a kept-alive one's first byte) to its whole request: a
# review of kube-apiserver's arrives in milliseconds, a stalled peer is closed after this.
INTAKE_SECONDS = 3.0
READ_BYTES = 64 * 1024  # one recv
# recv calls for one connection before the main loop turns to the others (each returns one
# TLS record, 16 KiB at most): a 3 MiB body cannot hold up the reviews behind it.
READS_A_TURN = 16
# A connection's first bytes never wait for memory: every real Airflow pod's review fits.
FREE_BYTES = 64 * 1024
# Bytes past FREE_BYTES held at once by a worker, across connections, until a thread takes
# them; a connection that needs more waits (not read: TCP pushes back) within its deadline.
BUFFER_BUDGET_BYTES = 4 * MAX_BODY_BYTES
# A body past this is refused at once; below it one past MAX_BODY_BYTES is read to its end
# (kube-apiserver's review of a create near its 3 MiB cap can be longer, Go escaping `<` as
# `\u003c`), so the thread answers it (413, held) on a connection kept alive.
DISCARD_LIMIT_BYTES = 8 * MAX_BODY_BYTES
# A connection holding memory that has not received READ_BYTES more for this long gives it
# up to one that needs memory to read on: a stalled or trickling peer loses its place, not
# one sending at 256 KiB/s or more (kube-apiserver sends a 3 MiB review in milliseconds),
# and not one waiting for memory (its peer is waiting on us) until WAITING_SECONDS: what it
# holds is then taken too, or connections whose peers left could hold it all while waiting.
STALLED_SECONDS = 0.25
WAITING_SECONDS = 1.0
# A thread writing its answer to a peer that stopped reading gives up after this.
THREAD_IO_SECONDS = 5.0
# A closed connection's peer gets this long to read the answer and close its side
# (gunicorn's close_graceful: 2 s and 64 KiB, but there in the main loop, blocking it).
LINGER_SECONDS = 2.0
LINGER_DRAIN_BYTES = 64 * 1024
WORKER_CONNECTIONS = 256  # per worker: kube-apiserver keeps a few dozen open at most
# With every place taken, a connection that has not finished its TLS handshake this long
# after it connected gives its place up (kube-apiserver's takes milliseconds): idle sockets
# then delay a new connection by about a second (the poller's wake-up), not INTAKE_SECONDS.
HANDSHAKE_SECONDS_WHEN_FULL = 0.5


class WholeRequestConn(TConn):
    """A connection whose TLS socket and parser are made on accept, in the main loop."""

    def __init__(self, cfg: Any, sock: Any, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.handshaken = not cfg.is_ssl
        self.read_bodies = True  # False: a client certificate is required and it sent none
        self.held_bytes = 0  # of the worker's budget, given back when a thread takes it
        self.parser = http.get_parser(cfg, sock, client)

    def init(self) -> None:
        # In a thread, with the request in memory: only the answer's writes can block.
        self.initialized = True
        self.sock.settimeout(THREAD_IO_SECONDS)


@dataclass
class Intake:
    """A connection whose request is being read by the main loop."""

    since: float  # when it was taken in: accepted, or a kept-alive one's next bytes
    framing: RequestFraming
    ahead: bytes = b""  # read ahead behind the previous request, not yet framed
    framed: Framed = field(default_factory=Framed)
    events: int = 0  # what the poller waits for on it (0: not registered)
    continued: bool = False  # `100 Continue` sent
    received: int = 0
    received_at: float = field(default_factory=time.monotonic)  # its last READ_BYTES more
    waiting_since: float | None = None  # for memory


@dataclass
class Lingering:
    """A connection closing: FIN sent, what the peer still sends drained until `until`."""

    until: float
    drained: int = 0


def pending_bytes(sock: Any) -> int:
    """Bytes TLS has decrypted and not yet handed out: the poller cannot see them."""
    return sock.pending() if isinstance(sock, ssl.SSLSocket) else 0


def may_send_bodies(sock: Any) -> bool:
    """False for a peer that sent no client certificate where one is asked for (mutual TLS):
    its reviews are refused from their head, so no body of its is read or held."""
    if not isinstance(sock, ssl.SSLSocket) or sock.context.verify_mode == ssl.CERT_NONE:
        return True
    try:
        return bool(sock.getpeercert())
    except (OSError, ValueError):
        return False


class WholeRequestWorker(ThreadWorker):
    """gthread, with the TLS handshake and the request read in the main loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intakes: dict[WholeRequestConn, Intake] = {}
        self.waiting_for_memory: deque[WholeRequestConn] = deque()
        self.lingering: dict[WholeRequestConn, Lingering] = {}
        self.held_bytes = 0
        self._held_lock = threading.Lock()
        self._resuming = False

    # -- the ways in: accept, a kept-alive connection's next request, bytes read ahead --

    def accept(self, listener: Any) -> None:
        try:
            raw, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        raw.setblocking(False)
        try:
            sock = raw
            if self.cfg.is_ssl:
                sock = gunicorn_sock.ssl_context(self.cfg).wrap_socket(
                    raw, server_side=True, do_handshake_on_connect=False,
                    suppress_ragged_eofs=self.cfg.suppress_ragged_eofs)
            conn = WholeRequestConn(self.cfg, sock, client, listener.getsockname())
        except (OSError, ValueError) as exc:
            log.debug("could not take a connection from %s: %s", client, exc)
            self.nr_conns -= 1
            util.close(raw)
            return
        self.take_in(conn)

    def on_client_socket_readable(self, conn: WholeRequestConn, client: Any) -> None:
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.take_in(conn)

    def enqueue_req(self, conn: WholeRequestConn) -> None:
        # gthread calls this with bytes read ahead behind an answered request: they may be a
        # part of the next one only, so they are read on like any request.
        self.take_in(conn)

    def take_in(self, conn: WholeRequestConn) -> None:
        conn.sock.setblocking(False)
        self.intakes[conn] = Intake(
            since=time.monotonic(),
            framing=RequestFraming(MAX_BODY_BYTES, DISCARD_LIMIT_BYTES,
                                   read_body=conn.read_bodies),
            ahead=conn.parser.unreader.take_buffered())
        self.advance(conn)

    # -- reading, in the main loop --

    def advance(self, conn: WholeRequestConn, _fileobj: Any = None) -> None:
        """Handshake and read as far as the peer's bytes go, then wait, hand over, or refuse."""
        intake = self.intakes.get(conn)
        if intake is None:
            return
        try:
            if not conn.handshaken:
                conn.sock.do_handshake()
                conn.handshaken = True
                conn.read_bodies = intake.framing.read_body = may_send_bodies(conn.sock)
            if intake.ahead:
                ahead, intake.ahead = intake.ahead, b""
                intake.framed = intake.framing.feed(ahead)
                self.settle(conn, intake)
            reads = 0
            while intake.framed.more:
                if intake.framing.continue_expected and not intake.continued:
                    conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")  # small: sent whole
                    intake.continued = True
                if reads == READS_A_TURN and not pending_bytes(conn.sock):
                    self.wait_for(conn, intake, selectors.EVENT_READ)  # its turn again soon
                    return
                if not self.reserve(conn, intake):
                    self.wait_for_memory(conn, intake)
                    return
                data = conn.sock.recv(READ_BYTES)
                reads += 1
                if not data:
                    self.drop(conn)
                    return
                intake.received += len(data)
                if intake.received // READ_BYTES > (intake.received - len(data)) // READ_BYTES:
                    intake.received_at = time.monotonic()
                intake.framed = intake.framing.feed(data)
                self.settle(conn, intake)
        except (ssl.SSLWantReadError, BlockingIOError):
            self.settle(conn, intake)
            self.wait_for(conn, intake, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self.settle(conn, intake)
            self.wait_for(conn, intake, selectors.EVENT_WRITE)
            return
        except (OSError, ValueError) as exc:  # ssl.SSLError included: a failed handshake
            log.debug("connection from %s dropped: %s", conn.client, exc)
            self.drop(conn)
            return
        except Exception:  # a bug of ours costs this connection, never the worker
            log.exception("connection from %s dropped", conn.client)
            self.drop(conn)
            return
        if intake.framed.status is not None:
            self.refuse(conn, intake.framed)
        else:
            self.hand_over(conn, intake)

    def wait_for(self, conn: WholeRequestConn, intake: Intake, events: int) -> None:
        if intake.events == events:
            return
        callback = partial(self.advance, conn)
        if intake.events:
            self.poller.modify(conn.sock, events, callback)
        else:
            self.poller.register(conn.sock, events, callback)
        intake.events = events

    def stop_waiting(self, conn: WholeRequestConn, intake: Intake) -> None:
        if intake.events:
            intake.events = 0
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)

    def hand_over(self, conn: WholeRequestConn, intake: Intake) -> None:
        self.stop_waiting(conn, intake)
        del self.intakes[conn]
        conn.parser.unreader.unread(intake.framing.kept)  # BytesIO copies it; no bytes() first
        conn.data_ready = True
        ThreadWorker.enqueue_req(self, conn)

    def refuse(self, conn: WholeRequestConn, framed: Framed) -> None:
        """Answer what needs no thread (a head too large, a body too large to read, framing
        no real caller sends), then close."""
        body = json.dumps(error_body(framed.reason)).encode()
        head = (f"HTTP/1.1 {framed.status} {HTTPStatus(framed.status).phrase}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        with contextlib.suppress(OSError):
            conn.sock.send(head + body)  # small: the socket's buffer takes it whole
        log.info("refused a request from %s before it was read: %s", conn.client,
                 framed.reason)
        self.forget(conn)
        self.linger(conn)  # the peer may still be sending: let it read the answer first

    def drop(self, conn: WholeRequestConn, *, resume: bool = True) -> None:
        if self.forget(conn, resume=resume):
            self.nr_conns -= 1
            conn.close()

    def forget(self, conn: WholeRequestConn, *, resume: bool = True) -> bool:
        """Stop reading `conn` and give its memory back (and, if `resume`, to the connections
        waiting for it); False if it was not being read (dropped already, or handed over:
        its count is settled)."""
        intake = self.intakes.pop(conn, None)
        if intake is None:
            return False
        self.stop_waiting(conn, intake)
        with contextlib.suppress(ValueError):
            self.waiting_for_memory.remove(conn)
        if self.give_back(conn) and resume:
            self.resume_waiting()
        return True

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn in [c for c, intake in self.intakes.items()
                     if now - intake.since >= INTAKE_SECONDS]:
            log.debug("connection from %s closed: no whole request within %ss",
                      conn.client, INTAKE_SECONDS)
            self.drop(conn)
        for conn in [c for c, lingering in self.lingering.items() if lingering.until <= now]:
            self.stop_lingering(conn)
        if self.nr_conns >= self.worker_connections:
            for conn in [c for c, intake in self.intakes.items() if not c.handshaken
                         and now - intake.since >= HANDSHAKE_SECONDS_WHEN_FULL]:
                self.drop(conn)
        self.resume_waiting()  # whatever freed memory since (a body past the limit, trimmed)

    # -- closing, in the main loop: gthread's close_graceful blocks it up to 2 s a peer --

    def finish_request(self, conn: WholeRequestConn, fs: Any) -> None:
        try:
            keep_alive = bool(fs.result()) if not fs.cancelled() else False
        except Exception:
            keep_alive = False
        if keep_alive:
            super().finish_request(conn, fs)  # back to the poller, or read ahead: take_in
        else:
            self.linger(conn)

    def linger(self, conn: WholeRequestConn) -> None:
        """Close as RFC 9112 9.6 asks (FIN, then drain what the peer still sends, so unread
        bytes do not turn the close into a reset that truncates the answer), without
        blocking: the drain waits in the poller, LINGER_SECONDS at most."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_READ,
                                 partial(self.drain_lingering, conn))
        except (OSError, ValueError):
            self.nr_conns -= 1
            util.close(conn.sock)
            return
        self.lingering[conn] = Lingering(until=time.monotonic() + LINGER_SECONDS)

    def drain_lingering(self, conn: WholeRequestConn, _fileobj: Any = None) -> None:
        lingering = self.lingering.get(conn)
        if lingering is None:
            return
        try:
            data = conn.sock.recv(READ_BYTES)
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except (OSError, ValueError):
            data = b""
        lingering.drained += len(data)
        if not data or lingering.drained >= LINGER_DRAIN_BYTES:
            self.stop_lingering(conn)

    def stop_lingering(self, conn: WholeRequestConn) -> None:
        if self.lingering.pop(conn, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        util.close(conn.sock)

    # -- memory: FREE_BYTES a connection, BUFFER_BUDGET_BYTES above that per worker --

    def reserve(self, conn: WholeRequestConn, intake: Intake) -> bool:
        """Memory for one more read; a stalled connection's is taken for it if need be."""
        need = max(0, intake.framing.size + READ_BYTES - FREE_BYTES) - conn.held_bytes
        if need <= 0:
            return True
        while True:
            with self._held_lock:
                if self.held_bytes + need <= BUFFER_BUDGET_BYTES:
                    self.held_bytes += need
                    conn.held_bytes += need
                    return True
            stalled = self.stalled_holder(conn)
            if stalled is None:
                return False
            log.info("connection from %s dropped: it held %d KiB and was not sending while "
                     "another needed memory", stalled.client, stalled.held_bytes // 1024)
            self.drop(stalled, resume=False)  # the memory is for `conn`, not the queue

    def stalled_holder(self, conn: WholeRequestConn) -> WholeRequestConn | None:
        """The connection other than `conn` holding the most memory among those that have
        not received READ_BYTES more for STALLED_SECONDS (waiting for memory: that have
        waited WAITING_SECONDS)."""
        now, found = time.monotonic(), None
        for other, intake in self.intakes.items():
            if other is conn or not other.held_bytes:
                continue
            if intake.waiting_since is None:
                stalled = now - intake.received_at >= STALLED_SECONDS
            else:
                stalled = now - intake.waiting_since >= WAITING_SECONDS
            if stalled and (found is None or other.held_bytes > found.held_bytes):
                found = other
        return found

    def settle(self, conn: WholeRequestConn, intake: Intake) -> None:
        """Hold what the connection's bytes take, no more (a recv returns less than asked)."""
        excess = conn.held_bytes - max(0, intake.framing.size - FREE_BYTES)
        if excess > 0:
            with self._held_lock:
                self.held_bytes -= excess
            conn.held_bytes -= excess

    def give_back(self, conn: WholeRequestConn) -> bool:
        with self._held_lock:
            held, conn.held_bytes = conn.held_bytes, 0
            self.held_bytes -= held
        return held > 0

    def wait_for_memory(self, conn: WholeRequestConn, intake: Intake) -> None:
        self.stop_waiting(conn, intake)
        intake.waiting_since = time.monotonic()
        self.waiting_for_memory.append(conn)

    def resume_waiting(self) -> None:
        """Read on the connections that waited for memory, oldest first, while there is some.
        Not re-entered: a connection it resumes may be dropped, which frees memory and would
        call it again."""
        if self._resuming:
            return
        self._resuming = True
        try:
            for _ in range(len(self.waiting_for_memory)):  # one try each, none twice
                if not self.waiting_for_memory:
                    return
                first = self.waiting_for_memory[0]
                if (self.held_bytes + READ_BYTES > BUFFER_BUDGET_BYTES
                        and self.stalled_holder(first) is None):
                    return  # no memory, and none to take: the first in line waits on
                self.waiting_for_memory.popleft()
                intake = self.intakes[first]
                intake.waiting_since, intake.received_at = None, time.monotonic()
                self.advance(first)
        finally:
            self._resuming = False

    # -- in a thread --

    def handle(self, conn: WholeRequestConn) -> Any:
        if self.give_back(conn):  # the request is this thread's now, its bytes too
            self.method_queue.defer(self.resume_waiting)
        return super().handle(conn)

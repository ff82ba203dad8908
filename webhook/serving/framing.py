"""Where an HTTP/1.1 request ends, told from the bytes received so far.

The worker (serving/worker.py) reads each request whole before a thread gets it, so a peer
that stalls mid-request costs a socket, never a thread. This is the part of that which needs
no socket: fed the bytes as they come, `RequestFraming` says whether more are needed, the
request is whole, or it can be refused without a thread (the answer's status). Only what
kube-apiserver, the kubelet's probes and a Prometheus scrape send is framed: a head of CRLF
lines, a body announced by one Content-Length or sent chunked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEAD_LIMIT_BYTES = 64 * 1024  # kube-apiserver's heads are well under 2 KiB
CHUNK_LINE_LIMIT_BYTES = 1024
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r\n")
_TRANSFER_ENCODING = re.compile(rb"(?im)^transfer-encoding[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r\n")
_HEX = re.compile(rb"[0-9a-fA-F]{1,15}")


@dataclass(frozen=True)
class Framed:
    """What the bytes so far say. `status` is set when the request is refused without a
    thread (400, 413, 431); `end` when the request is whole: its length in bytes."""

    end: int | None = None
    status: int | None = None
    reason: str = ""

    @property
    def more(self) -> bool:
        return self.end is None and self.status is None


MORE = Framed()


class RequestFraming:
    """Feed it a connection's bytes in order with `feed(data)`; it keeps the request's bytes
    (`kept`) and answers a `Framed`. A body declared longer than `body_limit` is read to its
    end but only its first `body_limit + 1` bytes kept, its Content-Length rewritten to match:
    whoever answers still sees a body over the limit, and memory stays bounded.
    `discard_limit` bounds what is read at all."""

    def __init__(self, body_limit: int, discard_limit: int) -> None:
        self.body_limit = body_limit
        self.discard_limit = discard_limit
        self.kept = bytearray()
        self._dropped = 0  # body bytes read past the limit and not kept
        self._head_end: int | None = None
        self._length: int | None = None  # the declared body length (Content-Length)
        self._chunk_at: int | None = None  # where the next chunk-size line starts (chunked)
        self._body_size = 0  # chunked: the body's length so far
        self._verdict = MORE

    def feed(self, data: bytes) -> Framed:
        self.kept += data  # once the request is whole, what follows is the next one's
        if self._verdict.more:
            self._verdict = self._frame()
        return self._verdict

    def _frame(self) -> Framed:
        if self._head_end is None:
            if self.kept.startswith(b"\r\n"):  # gunicorn would skip it and read on: refused
                return Framed(status=400, reason="request line missing")
            end = self.kept.find(b"\r\n\r\n", 0, HEAD_LIMIT_BYTES)  # a head fits the limit
            if end < 0:
                if len(self.kept) >= HEAD_LIMIT_BYTES:
                    return Framed(status=431, reason="request head too large")
                return MORE
            refused = self._read_head(end + 4)
            if refused is not None:
                return refused
        if self._chunk_at is not None:
            return self._frame_chunks()
        return self._frame_length()

    def _read_head(self, head_end: int) -> Framed | None:
        head = bytes(self.kept[:head_end])
        self._head_end = head_end
        lengths = _CONTENT_LENGTH.findall(head)
        encodings = _TRANSFER_ENCODING.findall(head)
        if encodings:
            if lengths or len(encodings) > 1 or encodings[0].lower() != b"chunked":
                return Framed(status=400, reason="unsupported Transfer-Encoding")
            self._chunk_at = head_end
            return None
        if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
            return Framed(status=400, reason="invalid Content-Length")
        self._length = int(lengths[0]) if lengths else 0
        if self._length > self.discard_limit:
            return Framed(status=413, reason="request body too large")
        if self._length > self.body_limit:
            match = _CONTENT_LENGTH.search(head)
            assert match is not None
            value = str(self.body_limit + 1).encode()
            self.kept[match.start(1):match.end(1)] = value
            self._head_end = head_end + len(value) - (match.end(1) - match.start(1))
        return None

    def _frame_length(self) -> Framed:
        assert self._head_end is not None and self._length is not None
        # Body bytes past the limit (none unless it was declared longer) are dropped as they
        # come, up to the body's end: what follows is the next request's.
        keep_end = self._head_end + self.body_limit + 1
        body_end = self._head_end + self._length - self._dropped  # where it ends in `kept`
        cut = len(self.kept[keep_end:body_end])
        del self.kept[keep_end:keep_end + cut]
        self._dropped += cut
        body_end -= cut
        if len(self.kept) < body_end:
            return MORE
        return Framed(end=body_end)

    def _frame_chunks(self) -> Framed:
        assert self._chunk_at is not None
        while True:
            at = self._chunk_at
            line_end = self.kept.find(b"\r\n", at, at + CHUNK_LINE_LIMIT_BYTES)
            if line_end < 0:
                if len(self.kept) - at >= CHUNK_LINE_LIMIT_BYTES:
                    return Framed(status=400, reason="invalid chunk size line")
                return MORE
            size_text = bytes(self.kept[at:line_end]).partition(b";")[0].strip()
            if not _HEX.fullmatch(size_text):
                return Framed(status=400, reason="invalid chunk size line")
            size = int(size_text, 16)
            if size == 0:
                # The last chunk, then trailer lines (none from a real caller) and a CRLF.
                end = self.kept.find(b"\r\n\r\n", line_end, line_end + HEAD_LIMIT_BYTES)
                if end >= 0:
                    return Framed(end=end + 4)
                if len(self.kept) - line_end >= HEAD_LIMIT_BYTES:
                    return Framed(status=431, reason="trailers too large")
                return MORE
            if self._body_size + size > self.body_limit:
                return Framed(status=413, reason="request body too large")
            next_at = line_end + 2 + size + 2
            if len(self.kept) < next_at:
                return MORE
            if self.kept[next_at - 2:next_at] != b"\r\n":
                return Framed(status=400, reason="chunk not followed by CRLF")
            self._body_size += size
            self._chunk_at = next_at

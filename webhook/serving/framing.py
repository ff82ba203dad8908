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
LENGTH_DIGITS_LIMIT = 15  # int() of a longer one is slow, or refused past 4,300 digits
# Each chunk costs the main loop a few µs however small: Go writes 4 KiB chunks at least, so
# a 3 MiB body is ~770 of them; one-byte chunks are only an attacker's.
CHUNKS_LIMIT = 4096
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r\n")
_TRANSFER_ENCODING = re.compile(rb"(?im)^transfer-encoding[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r\n")
_FRAMING_LINE = re.compile(rb"(?im)^(?:content-length|transfer-encoding)[ \t]*:[^\r\n]*\r\n")
_CONNECTION_LINE = re.compile(rb"(?im)^connection[ \t]*:[^\r\n]*\r\n")
_EXPECT_CONTINUE = re.compile(rb"(?im)^expect[ \t]*:[ \t]*100-continue[ \t]*\r\n")
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


def with_length(head: bytes, length: int, *, close: bool = False) -> bytes:
    """`head` (up to its blank line) announcing a body of `length` bytes instead: its
    Content-Length and Transfer-Encoding lines, and its Connection lines when `close`,
    replaced."""
    lines = _FRAMING_LINE.sub(b"", head[:-2])
    if close:
        lines = _CONNECTION_LINE.sub(b"", lines) + b"Connection: close\r\n"
    return lines + b"Content-Length: %d\r\n\r\n" % length


class RequestFraming:
    """Feed it a connection's bytes in order with `feed(data)`; it keeps the request's bytes
    (`kept`) and answers a `Framed`. What it hands on is always framed by a Content-Length,
    so the parser behind it reads no further than it did:
    - a body declared longer than `body_limit` is read to its end but only its first
      `body_limit + 1` bytes kept, its Content-Length rewritten to match (whoever answers
      still sees a body over the limit; memory stays bounded); `discard_limit` bounds what
      is read at all;
    - a chunked body is kept de-chunked (gunicorn's chunked reader copies the rest of its
      buffer for every chunk: a body of one-byte chunks took a thread for a minute);
    - without `read_body` (a caller that may not send reviews) the request is whole at the
      end of its head, kept with an empty body and `Connection: close`.
    """

    def __init__(self, body_limit: int, discard_limit: int, *, read_body: bool) -> None:
        self.body_limit = body_limit
        self.discard_limit = discard_limit
        self.read_body = read_body
        self.kept = bytearray()
        self._body = bytearray()  # chunked: the data of the chunks read so far
        self._dropped = 0  # body bytes read past the limit and not kept
        self._head_end: int | None = None
        self._length: int | None = None  # the declared body length (Content-Length)
        self._chunk_at: int | None = None  # where the next chunk-size line starts (chunked)
        self._chunks = 0
        # Where the search for a blank line (the head's end, the trailers') goes on from: a
        # head trickled a byte at a time is scanned once, not once a byte.
        self._scanned = 0
        # The head asked for `100 Continue` before its body (curl does, past 1 MiB); the
        # Expect line is taken out of what is handed on, so it is answered once, by the reader.
        self.continue_expected = False
        self._verdict = MORE

    @property
    def size(self) -> int:
        """Bytes held for the request (and what came after it)."""
        return len(self.kept) + len(self._body)

    def feed(self, data: bytes) -> Framed:
        self.kept += data  # once the request is whole, what follows is the next one's
        if self._verdict.more:
            self._verdict = self._frame()
        return self._verdict

    def _frame(self) -> Framed:
        if self._head_end is None:
            if self.kept.startswith(b"\r\n"):  # gunicorn would skip it and read on: refused
                return Framed(status=400, reason="request line missing")
            end = self._blank_line(0, HEAD_LIMIT_BYTES)  # a head fits the limit
            if end < 0:
                if len(self.kept) >= HEAD_LIMIT_BYTES:
                    return Framed(status=431, reason="request head too large")
                return MORE
            verdict = self._read_head(end + 4)
            if verdict is not None:
                return verdict
        if self._chunk_at is not None:
            return self._frame_chunks()
        return self._frame_length()

    def _blank_line(self, start: int, stop: int) -> int:
        """Where the first CRLF CRLF at or after `start` begins (within `stop`), or -1."""
        found = self.kept.find(b"\r\n\r\n", max(start, self._scanned - 3), stop)
        if found < 0:
            self._scanned = len(self.kept)
        return found

    def _read_head(self, head_end: int) -> Framed | None:
        """A refusal, a whole request, or None to read its body."""
        head = bytes(self.kept[:head_end])
        self._head_end = head_end
        lengths = _CONTENT_LENGTH.findall(head)
        encodings = _TRANSFER_ENCODING.findall(head)
        if encodings and (lengths or len(encodings) > 1 or encodings[0].lower() != b"chunked"):
            return Framed(status=400, reason="unsupported Transfer-Encoding")
        if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
            return Framed(status=400, reason="invalid Content-Length")
        if not self.read_body:
            return self._whole(with_length(head, 0, close=True), b"", b"")
        expect = _EXPECT_CONTINUE.search(head)
        if expect and (encodings or (lengths and lengths[0].strip(b"0"))):
            self.continue_expected = True
            del self.kept[expect.start():expect.end()]
            head_end -= expect.end() - expect.start()
            self._head_end = head_end
            head = bytes(self.kept[:head_end])
        if encodings:
            self._chunk_at = head_end
            return None
        if lengths and len(lengths[0]) > LENGTH_DIGITS_LIMIT:
            return Framed(status=413, reason="request body too large")
        self._length = int(lengths[0]) if lengths else 0
        if self._length > self.discard_limit:
            return Framed(status=413, reason="request body too large")
        if self._length > self.body_limit:
            rewritten = with_length(head, self.body_limit + 1)
            self.kept[:head_end] = rewritten
            self._head_end = len(rewritten)
        return None

    def _whole(self, head: bytes, body: bytes | bytearray, rest: bytes | bytearray) -> Framed:
        self.kept = bytearray(head) + body + rest
        self._body = bytearray()
        return Framed(end=len(head) + len(body))

    def _frame_length(self) -> Framed:
        assert self._head_end is not None and self._length is not None
        # Body bytes past the limit (none unless it was declared longer) are dropped as they
        # come, up to the body's end: what follows is the next request's.
        keep_end = self._head_end + self.body_limit + 1
        body_end = self._head_end + self._length - self._dropped  # where it ends in `kept`
        cut = max(0, min(len(self.kept), body_end) - keep_end)
        if cut:
            del self.kept[keep_end:keep_end + cut]
            self._dropped += cut
            body_end -= cut
        if len(self.kept) < body_end:
            return MORE
        return Framed(end=body_end)

    def _frame_chunks(self) -> Framed:
        assert self._chunk_at is not None and self._head_end is not None
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
                # The last chunk, then trailer lines (none from a real caller, and not passed
                # on) and a CRLF.
                end = self._blank_line(line_end, line_end + HEAD_LIMIT_BYTES)
                if end >= 0:
                    head = with_length(bytes(self.kept[:self._head_end]), len(self._body))
                    return self._whole(head, self._body, self.kept[end + 4:])
                if len(self.kept) - line_end >= HEAD_LIMIT_BYTES:
                    return Framed(status=431, reason="trailers too large")
                return MORE
            if len(self._body) + size > self.body_limit:
                return Framed(status=413, reason="request body too large")
            if self._chunks == CHUNKS_LIMIT:
                return Framed(status=400, reason=f"more than {CHUNKS_LIMIT} chunks")
            next_at = line_end + 2 + size + 2
            if len(self.kept) < next_at:
                return MORE
            if self.kept[next_at - 2:next_at] != b"\r\n":
                return Framed(status=400, reason="chunk not followed by CRLF")
            self._body += self.kept[line_end + 2:next_at - 2]
            self._chunks += 1
            self._chunk_at = next_at

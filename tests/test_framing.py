"""Where a request ends, from the bytes a peer has sent so far: kube-apiserver's review, a
probe's GET, and what an attacker sends instead."""

from __future__ import annotations

import pytest

from webhook.serving.framing import CHUNKS_LIMIT, HEAD_LIMIT_BYTES, Framed, RequestFraming

REVIEW = (b"POST /validate?timeout=10s HTTP/1.1\r\nHost: airflow-pod-webhook.svc:443\r\n"
          b"Content-Type: application/json\r\nContent-Length: 17\r\n\r\n"
          b'{"kind":"Review"}')
PROBE = b"GET /readyz HTTP/1.1\r\nHost: 10.0.0.7:8443\r\nUser-Agent: kube-probe/1.36\r\n\r\n"
CHUNKED = (b"POST /mutate HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"6\r\n{\"kind\r\nb;ext=1\r\n\":\"Review\"}\r\n0\r\n\r\n")
# ... as handed on: de-chunked, with a Content-Length
DECHUNKED = (b"POST /mutate HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n"
             b'{"kind":"Review"}')
CHUNKED_HEAD = b"POST /m HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"


def framing(body_limit: int = 1024, discard_limit: int = 4096, read_body: bool = True
            ) -> RequestFraming:
    return RequestFraming(body_limit, discard_limit, read_body=read_body)


def fed(data: bytes, *, split: int | None = None, **options: int) -> tuple[Framed, bytes]:
    frames = framing(**options)
    parts = [data] if split is None else [data[:split], data[split:]]
    verdict = Framed()
    for part in parts:
        verdict = frames.feed(part)
    return verdict, bytes(frames.kept)


@pytest.mark.parametrize(("request_bytes", "handed_on"),
                         [(REVIEW, REVIEW), (PROBE, PROBE), (CHUNKED, DECHUNKED)],
                         ids=["review", "probe", "chunked"])
def test_a_request_is_whole_at_its_last_byte_however_it_is_split(request_bytes: bytes,
                                                                 handed_on: bytes) -> None:
    for split in range(len(request_bytes)):
        frames = framing()
        assert frames.feed(request_bytes[:split]).more, split
        assert frames.feed(request_bytes[split:]) == Framed(end=len(handed_on)), split
        assert bytes(frames.kept) == handed_on


def test_one_byte_short_is_never_whole() -> None:
    for request_bytes in (REVIEW, PROBE, CHUNKED):
        assert framing().feed(request_bytes[:-1]).more


def test_bytes_after_a_whole_request_are_kept_for_the_next_one() -> None:
    frames = framing()
    assert frames.feed(REVIEW + PROBE[:10]) == Framed(end=len(REVIEW))
    assert frames.feed(PROBE[10:]) == Framed(end=len(REVIEW))  # the verdict is the first's
    assert bytes(frames.kept) == REVIEW + PROBE


def test_a_body_over_the_limit_is_read_to_its_end_but_only_its_start_kept() -> None:
    head = b"POST /validate HTTP/1.1\r\nHost: h\r\ncontent-length:  3000 \r\n\r\n"
    body = b"a" * 1024 + b"b" * 1976
    frames = framing(body_limit=1024, discard_limit=4096)
    rewritten = b"POST /validate HTTP/1.1\r\nHost: h\r\nContent-Length: 1025\r\n\r\n"
    assert frames.feed(head + body[:1500]).more
    assert len(frames.kept) == len(rewritten) + 1025
    assert frames.feed(body[1500:2999]).more
    verdict = frames.feed(body[2999:] + PROBE)
    assert verdict == Framed(end=len(rewritten) + 1025)
    assert bytes(frames.kept) == rewritten + b"a" * 1024 + b"b" + PROBE


def test_a_body_over_the_discard_limit_is_refused_from_its_head() -> None:
    head = b"POST /validate HTTP/1.1\r\nContent-Length: 4097\r\n\r\n"
    assert fed(head)[0] == Framed(status=413, reason="request body too large")
    assert fed(head.replace(b"4097", b"4096"))[0].more


def test_a_chunked_body_is_refused_once_its_chunk_sizes_pass_the_limit() -> None:
    at_limit = CHUNKED_HEAD + b"400\r\n" + b"x" * 1024 + b"\r\n"
    handed_on = b"POST /m HTTP/1.1\r\nContent-Length: 1024\r\n\r\n" + b"x" * 1024
    assert fed(at_limit + b"0\r\n\r\n") == (Framed(end=len(handed_on)), handed_on)
    assert fed(at_limit + b"1\r\n")[0] == Framed(status=413, reason="request body too large")


def test_a_head_of_the_limit_is_read_one_byte_more_is_refused() -> None:
    start = b"GET /readyz HTTP/1.1\r\nX-Pad: "
    at_limit = start + b"p" * (HEAD_LIMIT_BYTES - len(start) - 4) + b"\r\n\r\n"
    assert len(at_limit) == HEAD_LIMIT_BYTES
    assert fed(at_limit) == (Framed(end=HEAD_LIMIT_BYTES), at_limit)
    over = at_limit[:-4] + b"p\r\n\r\n"
    assert fed(over)[0] == Framed(status=431, reason="request head too large")
    assert fed(over[:HEAD_LIMIT_BYTES - 1])[0].more  # no end yet, and room for one
    assert fed(over[:HEAD_LIMIT_BYTES])[0] == Framed(status=431,
                                                    reason="request head too large")


def test_a_body_of_exactly_the_limit_is_kept_as_sent() -> None:
    head = b"POST /validate HTTP/1.1\r\nContent-Length: 1024\r\n\r\n"
    request_bytes = head + b"z" * 1024
    assert fed(request_bytes, body_limit=1024) == (Framed(end=len(request_bytes)),
                                                    request_bytes)
    assert fed(request_bytes[:-1], body_limit=1024)[0].more


@pytest.mark.parametrize(("head", "reason"), [
    (b"Content-Length: 5\r\nContent-Length: 5\r\n", "invalid Content-Length"),
    (b"Content-Length: -5\r\n", "invalid Content-Length"),
    (b"Content-Length: 0x10\r\n", "invalid Content-Length"),
    (b"Transfer-Encoding: gzip, chunked\r\n", "unsupported Transfer-Encoding"),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "unsupported Transfer-Encoding"),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
     "unsupported Transfer-Encoding"),
])
def test_framing_no_real_caller_sends_is_refused(head: bytes, reason: str) -> None:
    request_bytes = b"POST /mutate HTTP/1.1\r\nHost: h\r\n" + head + b"\r\nhello"
    assert fed(request_bytes)[0] == Framed(status=400, reason=reason)


@pytest.mark.parametrize(("chunks", "reason"), [
    (b"zz\r\nhello\r\n", "invalid chunk size line"),
    (b"5\r\nhelloXX0\r\n\r\n", "chunk not followed by CRLF"),
    (b"1" * 1024, "invalid chunk size line"),  # no CRLF within the line's 1024 bytes
    (b"1;" + b"e" * 1021 + b"\r\n", "invalid chunk size line"),  # its CRLF past them
])
def test_bad_chunks_are_refused(chunks: bytes, reason: str) -> None:
    head = b"POST /mutate HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert fed(head + chunks)[0] == Framed(status=400, reason=reason)


def test_chunks_are_held_to_the_limit_together() -> None:
    head = b"POST /mutate HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"258\r\n" + b"x" * 600 + b"\r\n"
    assert fed(head + chunk + chunk)[0] == Framed(status=413, reason="request body too large")
    assert fed(head + chunk + b"1a8\r\n")[0].more  # 600 + 424 = 1024
    small = b"190\r\n" + b"y" * 400 + b"\r\n"
    assert fed(head + small * 3)[0] == Framed(status=413, reason="request body too large")


def test_a_chunked_request_ends_at_its_own_last_chunk_not_the_next_requests() -> None:
    handed_on = b"POST /m HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
    assert fed(CHUNKED_HEAD + b"2\r\nhi\r\n0\r\n\r\n" + PROBE) == (
        Framed(end=len(handed_on)), handed_on + PROBE)


def test_a_request_starting_with_an_empty_line_is_refused() -> None:
    assert fed(b"\r\n" + PROBE)[0] == Framed(status=400, reason="request line missing")
    assert fed(b"\r")[0].more


def test_chunked_trailers_end_the_request() -> None:
    request_bytes = CHUNKED_HEAD + b"2\r\nhi\r\n0\r\nX-Checksum: 1\r\n\r\n"
    handed_on = b"POST /m HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"  # trailers not passed on
    for split in range(len(request_bytes)):
        assert fed(request_bytes, split=split) == (Framed(end=len(handed_on)), handed_on), split


def test_a_chunk_size_line_may_carry_extensions_up_to_its_limit() -> None:
    head = CHUNKED_HEAD
    line = b"2;name=a;other=b" + b"e" * (1022 - 16)  # 1022 bytes, then its CRLF: the limit
    assert fed(head + line + b"\r\nhi\r\n0\r\n\r\n")[1].endswith(b"Content-Length: 2\r\n\r\nhi")
    assert fed(head + line + b"e\r\n")[0] == Framed(status=400,
                                                     reason="invalid chunk size line")
    assert fed(head + line[:-1])[0].more


def test_trailers_past_the_head_limit_are_refused() -> None:
    last = CHUNKED_HEAD + b"0"
    trailer = b"\r\nX-T: " + b"t" * (HEAD_LIMIT_BYTES - 11)  # from the CRLF: the limit - 4
    assert not fed(last + trailer + b"\r\n\r\n")[0].more
    assert fed(last + trailer + b"ttt")[0].more
    assert fed(last + trailer + b"tttt")[0] == Framed(status=431, reason="trailers too large")
    assert fed(last + trailer + b"tt\r\n\r\n")[0] == Framed(status=431,
                                                            reason="trailers too large")


@pytest.mark.parametrize("sent", [
    REVIEW, CHUNKED, REVIEW.replace(b"Content-Length: 17", b"Content-Length: 99999999"),
    PROBE.replace(b"Host", b"Connection: keep-alive\r\nHost"),
], ids=["review", "chunked", "over the discard limit", "probe kept alive"])
def test_without_read_body_a_request_is_whole_at_its_head_and_closes(sent: bytes) -> None:
    """A caller without the client certificate: its body is never read, the answer (a 401
    for a review, the page for a probe) closes the connection."""
    verdict, kept = fed(sent[:sent.index(b"\r\n\r\n") + 6] + b"and more", read_body=False)
    first_line = sent[:sent.index(b"\r\n") + 2]
    assert kept.startswith(first_line)
    assert kept.endswith(b"Connection: close\r\nContent-Length: 0\r\n\r\n")
    assert verdict == Framed(end=len(kept))
    assert b"keep-alive" not in kept and b"chunked" not in kept and b"9999" not in kept
    if sent.startswith(b"GET"):
        assert kept == PROBE[:-2] + b"Connection: close\r\nContent-Length: 0\r\n\r\n"


def test_a_content_length_of_more_digits_than_any_body_is_refused_as_too_large() -> None:
    head = b"POST /validate HTTP/1.1\r\nContent-Length: " + b"1" * 5000 + b"\r\n\r\n"
    assert fed(head)[0] == Framed(status=413, reason="request body too large")
    assert fed(head.replace(b"1" * 5000, b"0" * 15))[0] == Framed(end=len(head) - 4985)


def test_one_chunk_more_than_the_limit_is_refused() -> None:
    chunks = b"1\r\nx\r\n" * CHUNKS_LIMIT
    handed_on = b"POST /m HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % CHUNKS_LIMIT
    assert fed(CHUNKED_HEAD + chunks + b"0\r\n\r\n", body_limit=10_000) == (
        Framed(end=len(handed_on) + CHUNKS_LIMIT), handed_on + b"x" * CHUNKS_LIMIT)
    assert fed(CHUNKED_HEAD + chunks + b"1\r\n", body_limit=10_000)[0] == Framed(
        status=400, reason=f"more than {CHUNKS_LIMIT} chunks")


@pytest.mark.parametrize(("sent", "expected"), [
    (REVIEW.replace(b"Content-Length", b"Expect: 100-continue\r\nContent-Length"), True),
    (CHUNKED.replace(b"Transfer", b"expect:100-Continue\r\nTransfer"), True),
    (PROBE.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"), False),  # no body
    (REVIEW.replace(b"Content-Length: 17", b"Expect: 100-continue\r\nContent-Length: 000")
     .removesuffix(b'{"kind":"Review"}'), False),
])
def test_a_body_awaiting_100_continue_is_asked_for_once(sent: bytes, expected: bool) -> None:
    frames = framing()
    verdict = frames.feed(sent[:sent.index(b"\r\n\r\n") + 4])
    assert frames.continue_expected is expected
    verdict = frames.feed(sent[sent.index(b"\r\n\r\n") + 4:])
    assert verdict.end is not None
    assert (b"100-continue" in bytes(frames.kept).lower()) is not expected
    assert frames.size == len(frames.kept)


def test_a_body_over_the_limit_awaiting_100_continue_is_asked_for_and_cut() -> None:
    head = b"POST /v HTTP/1.1\r\nExpect: 100-continue\r\nHost: h\r\nContent-Length: 2000\r\n\r\n"
    frames = framing()
    assert frames.feed(head).more and frames.continue_expected
    assert frames.feed(b"q" * 2000) == Framed(end=len(head) - 22 + 1025)
    assert bytes(frames.kept) == (b"POST /v HTTP/1.1\r\nHost: h\r\nContent-Length: 1025\r\n\r\n"
                                  + b"q" * 1025)

"""The stream's fast path for whole reads (stream._whole_read, _standard_frames, _admit_read) against its general
path, on the simulator's own frames: however the bytes are cut into network reads, and whatever SSE the server
mixes in, the consumer delivers the same events and ends in the same state.

The reads are fed to the real ``StreamConsumer._read`` (framing, decoding, id checks, queue) by a stand-in
response that yields the given chunks; the reference is the same consumer with the whole-read path switched off
(``_whole_read`` → None: the per-frame framer and per-event admission, as before the fast path), and for the
events themselves the tolerant decoder over httpx-sse's own parse of the same text (the SSE spec's reading).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

import ttmt_monitor.sources.ttmt.stream as stream_mod
from _sim_support import market_envelopes
from ttmt_monitor.sources.ttmt.decode import decode_event, parse_json
from ttmt_monitor.sources.ttmt.stream import StreamConsumer, _Reconnect, _whole_read


@pytest.fixture(scope="module")
def frames() -> Iterator[list[str]]:
    """The simulator's frames as its stream writes them: a market's worth of events of every kind, then a burst
    of price ticks."""
    envelopes = market_envelopes(seed=5, seconds=900, burst=300)
    yield [f"id: {e['eventId']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n" for e in envelopes]


class _Response:
    """What ``_read`` uses of an httpx response: its decoded text, here in the chunks given."""

    def __init__(self, chunks: list[str]) -> None:
        self.chunks = chunks

    async def aiter_text(self) -> AsyncIterator[str]:
        for chunk in self.chunks:
            await asyncio.sleep(0)
            yield chunk


@pytest.fixture(scope="module")
def consumer() -> Iterator[StreamConsumer]:
    c = StreamConsumer(base_url="http://127.0.0.1:1/api/v1", api_key="ttmt_live_" + "x" * 43,
                       queue_batches=1 << 20)
    yield c
    asyncio.run(c.aclose())


def consume(consumer: StreamConsumer, chunks: list[str], last_event_id: int | None,
            gap_detection: bool = True) -> dict[str, Any]:
    """One connection's reads through the real ``_read``; what the desk gets and the state the consumer keeps."""
    c = consumer
    c.last_event_id, c.gap_detection = last_event_id, gap_detection
    c._recent.clear()  # noqa: SLF001
    c.stats = type(c.stats)()
    while not c._queue.empty():  # noqa: SLF001
        c._queue.get_nowait()  # noqa: SLF001

    async def run() -> None:
        with pytest.raises(_Reconnect):
            await c._read(_Response(chunks))  # type: ignore[arg-type]  # noqa: SLF001

    asyncio.run(run())
    delivered = []
    while not c._queue.empty():  # noqa: SLF001
        delivered.extend(c._queue.get_nowait())  # noqa: SLF001
    return {
        "events": [(type(e).__name__, repr(e), dict(e.raw)) for e in delivered],
        "last_event_id": c.last_event_id,
        "conn_prev_id": c._conn_prev_id,  # noqa: SLF001
        # (each remembered timestamp as the replay check reads it: the plain tier keeps the one it parsed)
        "recent": [(eid, (data, stream_mod._when(stamp))) for eid, (data, stamp) in c._recent.items()],  # noqa: SLF001
        "prev_sse_id": c._prev_sse_id,  # noqa: SLF001
        "stats": c.stats,
        "retry": c.server_retry_ms,
    }


def reference(consumer: StreamConsumer, monkeypatch: pytest.MonkeyPatch, chunks: list[str], **kw: Any) -> Any:
    with monkeypatch.context() as m:
        m.setattr(stream_mod, "_whole_read", lambda buf, end: None)
        return consume(consumer, chunks, **kw)


def spec_events(text: str) -> list[tuple[str, str]]:
    """(type, repr) of the domain events the SSE spec's reading of ``text`` gives, decoded by the tolerant path."""
    lines, decoder, out = SSELineDecoder(), SSEDecoder(), []
    for line in [*lines.decode(text), *lines.flush()]:
        sse = decoder.decode(line)
        if sse is not None and sse.data:
            event = decode_event(parse_json(sse.data))
            out.append((type(event).__name__, repr(event)))
    return out


def test_whole_reads_of_standard_frames_are_recognised_and_others_are_not(frames: list[str]) -> None:
    text = "".join(frames[:5])
    ids, datas = _whole_read(text, len(text))  # type: ignore[misc]
    assert list(ids) == [f.split("\n")[0][4:] for f in frames[:5]]
    assert list(datas) == [f.split("\n")[1][6:] for f in frames[:5]]
    for odd in (
        "x" + text,  # a field named "xid"
        text.replace("\n\nid: ", "\n\n id: ", 1),  # a field named " id"
        text.replace("\ndata: ", "\ndata:", 1),  # no space: httpx-sse's reading, not ours
        text.replace("\ndata: ", "\nevent: tick\ndata: ", 1),
        text.replace("\ndata: ", "\ndata: {}\ndata: ", 1),  # two data lines
        text.replace("\n\nid: ", "\n\n: ping\n\nid: ", 1),  # a comment between frames
        text.replace("\n\nid: ", "\n\nretry: 5\n\nid: ", 1),
        text.replace("\n\nid: ", "\n\n\nid: ", 1),  # an extra blank line
        text.replace("id: ", "id: 1a", 1),
        text.replace("id: ", "id:  ", 1),
    ):
        assert _whole_read(odd, len(odd)) is None, odd[:80]


def _standard_frames_by_regex(text: str) -> tuple[list[str], list[str]] | None:
    """The definition of a read of standard frames, as one regex says it (what ``_whole_read`` did before it split
    at line ends): frames that tile the text exactly, each ``id: `` ASCII digits, one ``data: `` line, a blank
    line."""
    found = re.findall(r"id: ([0-9]+)\ndata: ([^\n]*)\n\n", text)
    if not found or 13 * len(found) + sum(len(i) + len(d) for i, d in found) != len(text):
        return None
    return [i for i, _ in found], [d for _, d in found]


def test_whole_reads_agree_with_the_regex_definition_on_mutated_reads() -> None:
    """Reads of a few small standard frames with a few random edits (line ends, field names, spaces, CRs,
    non-ASCII digits, cut ends): ``_whole_read`` takes exactly the reads the regex definition takes, with the
    same ids and data."""
    rnd = random.Random(16)
    frames = [f'id: {i}\ndata: {{"a":{i},"b":"x y"}}\n\n' for i in range(1, 12)]
    edits = ["\n", "\n\n", "id: ", "data: ", "data:", ":", " ", "x", "7", "\r", "\u0663", "\u00b2", "\n\nid: ",
             "\ndata: ", "\nid: 5", ""]
    taken = 0
    for _ in range(4000):
        text = "".join(rnd.sample(frames, rnd.randint(1, 4)))
        for _ in range(rnd.randint(0, 2)):
            i = rnd.randint(0, len(text))
            j = i if rnd.random() < 0.5 else min(len(text), i + rnd.randint(1, 6))
            text = text[:i] + rnd.choice(edits) + text[j:]
        for end in (text.rfind("\n\n") + 2, rnd.randint(0, len(text))):
            expected = _standard_frames_by_regex(text[:end]) if end >= 1 else None
            got = _whole_read(text, end)
            assert (None if got is None else (list(got[0]), list(got[1]))) == expected, repr(text[:end])
            taken += expected is not None
    assert taken > 1000  # (both kinds of read were tried, many times)


def test_the_simulators_stream_in_64_kib_reads_gives_what_the_general_path_and_the_spec_give(
        frames: list[str], consumer: StreamConsumer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    text = "".join(frames)
    chunks = [text[i:i + 65536] for i in range(0, len(text), 65536)]
    first = int(frames[0].split("\n")[0][4:])
    for last, gaps in ((first - 1, True), (None, True), (first - 1, False)):
        got = consume(consumer, chunks, last_event_id=last, gap_detection=gaps)
        assert got == reference(consumer, monkeypatch, chunks, last_event_id=last, gap_detection=gaps)
        assert [e[:2] for e in got["events"]] == spec_events(text)
        assert len(got["recent"]) == 256 and got["stats"].events == len(frames)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_reads_cut_at_every_position_of_a_few_frames(frames: list[str], consumer: StreamConsumer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Three frames (a price tick among other kinds), cut into two reads at every character, and into three at
    a spread of pairs: the same events and state as the unbroken text through the general path."""
    kinds = [json.loads(f.split("\ndata: ")[1])["type"] for f in frames]
    i = next(n for n in range(1, len(frames) - 1) if kinds[n] == "position_update" and kinds[n + 1] != kinds[n])
    text = "".join(frames[i - 1:i + 2])
    last = int(frames[i - 1].split("\n")[0][4:]) - 1
    expected = reference(consumer, monkeypatch, [text], last_event_id=last)
    assert len(expected["events"]) == 3 and [e[:2] for e in expected["events"]] == spec_events(text)
    for cut in range(1, len(text)):
        assert consume(consumer, [text[:cut], text[cut:]], last_event_id=last) == expected, cut
    for a in range(1, len(text), 37):
        for b in range(a + 1, len(text), 53):
            assert consume(consumer, [text[:a], text[a:b], text[b:]], last_event_id=last) == expected, (a, b)


SSE_ODDITIES = {
    "comment": lambda f: ": ping\n\n" + f,
    "comment line in a frame": lambda f: ": note\n" + f,
    "crlf": lambda f: f.replace("\n", "\r\n"),
    "cr": lambda f: f.replace("\n", "\r"),
    "event field": lambda f: "event: message\n" + f,
    "retry": lambda f: "retry: 2500\n" + f,
    "retry frame": lambda f: "retry: 2500\n\n" + f,
    "data without space": lambda f: f.replace("data: ", "data:", 1),
    "id without space": lambda f: f.replace("id: ", "id:", 1),
    "multi-line data": lambda f: f.replace('"data":{', '\ndata: "data":{', 1),
    "data before id": lambda f: "\n".join(reversed(f.rstrip("\n").split("\n"))) + "\n\n",
    "no id": lambda f: f.split("\n", 1)[1],
    "unknown field": lambda f: "foo: bar\n" + f,
    "id-only frame": lambda f: "id: 999999\n\n" + f,
    "empty data": lambda f: f.split("\n", 1)[0] + "\ndata: \n\n" + f,
    "extra blank lines": lambda f: "\n\n" + f,
    "field without colon": lambda f: "data\n" + f,
}


@pytest.mark.parametrize("oddity", sorted(SSE_ODDITIES))
def test_sse_beyond_the_standard_frame_falls_back_and_reads_the_same(
        oddity: str, frames: list[str], consumer: StreamConsumer, monkeypatch: pytest.MonkeyPatch) -> None:
    """An SSE feature the standard frame does not use, in the middle of a run of standard frames: the reads that
    hold it go the general way, and the consumer delivers what it delivered before the fast path; the other
    reads stay fast."""
    ticks = [f for f in frames if '"type":"position_update"' in f][:40]
    mangled = ticks[:20] + [SSE_ODDITIES[oddity](ticks[20])] + ticks[21:]
    text = "".join(mangled)
    last = int(ticks[0].split("\n")[0][4:]) - 1
    for chunks in ([text], [text[i:i + 4096] for i in range(0, len(text), 4096)]):
        whole = []
        real = stream_mod._whole_read  # noqa: SLF001

        def spy(buf: str, end: int, real: Any = real, whole: list[bool] = whole) -> Any:
            out = real(buf, end)
            whole.append(out is not None)
            return out

        with monkeypatch.context() as m:
            m.setattr(stream_mod, "_whole_read", spy)
            got = consume(consumer, chunks, last_event_id=last, gap_detection=False)
        assert got == reference(consumer, monkeypatch, chunks, last_event_id=last, gap_detection=False)
        if oddity == "empty data":
            assert all(whole)  # still the standard shape: the frame itself goes to the tolerant path
        elif oddity not in ("cr", "crlf") and len(chunks) > 1:
            assert any(whole) and not all(whole), whole  # fast up to the odd read, general for it
        if oddity in ("cr", "crlf"):
            assert len(whole) < len(chunks)  # from the first CR on, the line splitter reads everything


def test_the_bulk_admission_declines_what_it_cannot_decide(frames: list[str], consumer: StreamConsumer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection's first read (replayed ids at or below the last one among its frames) and a repeat within a
    read are left to the per-event checks, which decide exactly as before; a clean run continuing the last id is
    admitted at once, and so is a rising run with holes on a filtered stream (no gap detection)."""
    ticks = frames[-60:]  # consecutive ids
    ids = [int(f.split("\n")[0][4:]) for f in ticks]
    assert ids == list(range(ids[0], ids[0] + 60))
    text = "".join(ticks)
    bulk = []
    real = StreamConsumer._admit_read  # noqa: SLF001

    def spy(self: StreamConsumer, *args: Any) -> bool:
        out = real(self, *args)
        bulk.append(out)
        return out

    monkeypatch.setattr(StreamConsumer, "_admit_read", spy)
    scenarios = {
        "continuing": ([text[:len(text) // 2], text[len(text) // 2:]], ids[0] - 1, True),
        "a replay after reconnecting": (["".join(ticks[10:40]), "".join(ticks[40:])], ids[29], True),
        "a repeat within a read": (["".join(ticks[:30]), "".join(ticks[30:35] + ticks[34:40])], ids[0] - 1, True),
        "a repeat within a read, filtered": (["".join(ticks[:30]), "".join(ticks[30:35] + ticks[34:40])], ids[0] - 1,
                                            False),
        "sparse ids, filtered": (["".join(ticks[:5]), "".join(ticks[6::2])], ids[0] - 1, False),
    }
    for name, (chunks, last, gaps) in scenarios.items():
        bulk.clear()
        got = consume(consumer, chunks, last_event_id=last, gap_detection=gaps)
        with monkeypatch.context() as m:
            m.setattr(StreamConsumer, "_admit_read", lambda self, *a: False)
            assert got == consume(consumer, chunks, last_event_id=last, gap_detection=gaps), name
        assert bulk[-1] is not name.startswith("a repeat"), (name, bulk)
        assert bulk[0] is False  # a connection's first read: its first id is checked against what we sent


def test_the_recent_ids_are_remembered_by_read_and_recalled_newest_first() -> None:
    """What a connection's first frame is compared with (replay or restarted server): a read admitted at once is
    one block; the newest _RECENT_IDS ids stay recallable, the older blocks go, and an id received twice recalls
    its newest frame."""
    from ttmt_monitor.sources.ttmt.stream import _RECENT_IDS, _Recent

    def block(ids: list[int], tag: str = "") -> tuple[list[int], list[str], list[str]]:
        return ids, [f"data {i}{tag}" for i in ids], [f"ts {i}" for i in ids]

    recent = _Recent()
    recent.add(*block(list(range(1, 101))))
    recent.add((101,), ("data 101",), ("ts 101",))
    recent.add(*block(list(range(102, 301))))
    assert recent.recalled(1) == ("data 1", "ts 1") and recent.recalled(101) == ("data 101", "ts 101")
    recent.add(*block(list(range(301, 401))))
    assert recent.recalled(50) is None and recent.recalled(101) is None  # more than _RECENT_IDS newer ids
    assert recent.recalled(150) == ("data 150", "ts 150") and recent.recalled(400) == ("data 400", "ts 400")
    assert recent.recalled(401) is None and recent.recalled(0) is None
    assert [eid for eid, _ in recent.items()] == list(range(401 - _RECENT_IDS, 401))
    recent.add(*block([150], " again"))
    assert recent.recalled(150) == ("data 150 again", "ts 150")
    # Rising ids with holes (no gap detection): an id in a hole is not recalled.
    recent.add(*block([500, 502, 505]))
    assert recent.recalled(502) == ("data 502", "ts 502") and recent.recalled(503) is None
    recent.clear()
    assert recent.recalled(502) is None and recent.items() == []


def test_a_restart_is_told_by_a_later_timestamp_whichever_path_remembered_the_last_one(
        frames: list[str], consumer: StreamConsumer) -> None:
    """A connection's first frame at or below the id we sent, with the same data position unknown, is a restarted
    server when its timestamp is later than that of the last event we received. The plain tier remembers the
    timestamp it parsed (a datetime), the other paths the text: the rule reads both alike."""
    from datetime import UTC, datetime

    from ttmt_monitor.sources.ttmt.decode import _ts
    from ttmt_monitor.sources.ttmt.stream import _Recent

    c = consumer

    def restart(last: Any, new: Any) -> bool:
        c._recent = _Recent()  # noqa: SLF001
        c._recent.add((10,), ("data 10",), (last,))  # noqa: SLF001
        c._sent_id, c._conn_prev_id = 10, None  # noqa: SLF001
        return c._new_sequence(9, True, new, "data 9")  # noqa: SLF001

    for last in (datetime(2026, 3, 1, 10, 0, tzinfo=UTC), "2026-03-01T10:00:00.000Z"):
        assert restart(last, "2026-03-01T10:00:01Z")  # later: a restart
        assert not restart(last, "2026-03-01T09:59:59Z")  # older: a replay
        assert not restart(last, datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    # The text read as the decoders read it (the plain tier's datetime is theirs): a lower-case "z", digits past
    # the microsecond rounded. Before, fromisoformat refused the one and truncated the other, and the same last
    # event decided differently by the path that had remembered it.
    for text in ("2026-03-01T10:00:00z", "2026-03-01T10:00:00.9999995Z", "2026-03-01T10:00:00." + "9" * 45 + "Z"):
        for new in ("2026-03-01T10:00:01Z", "2026-03-01T10:00:00.5Z", "2026-03-01T09:59:59Z"):
            assert restart(text, new) == restart(_ts(text), new), (text, new)


def test_a_value_no_check_foresaw_costs_the_fast_path_never_the_stream(
        frames: list[str], consumer: StreamConsumer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A position tick with a signaling NaN where TTMT sends nothing ("swap": "sNaN") made the whole-read check
    raise TypeError (an sNaN cannot be hashed), and a number Decimal cannot hold (an exponent of 20 digits) made
    the tolerant parse raise InvalidOperation: either ended the stream for good, the desk frozen on its last
    state. Now the first goes the tolerant way (which ignores the member) and the second is skipped as malformed;
    the events around them are delivered as ever."""
    ticks = [f for f in frames if '"type":"position_update"' in f][-12:]
    odd = [ticks[3].replace('"position":{', '"position":{"swap":"sNaN",', 1),
           ticks[5].replace('"position":{', '"position":{"commission":"-sNaN","source":null,', 1),
           ticks[7].replace('"volume":', '"volume":1e9999999999999999999,"x":', 1)]
    assert all(o != t for o, t in zip(odd, (ticks[3], ticks[5], ticks[7]), strict=True))
    mixed = ticks[:3] + [odd[0]] + ticks[4:5] + [odd[1]] + ticks[6:7] + [odd[2]] + ticks[8:]
    text = "".join(mixed)
    first = int(mixed[0].split("\n")[0][4:])
    got = consume(consumer, [text], last_event_id=first - 1)
    assert got == reference(consumer, monkeypatch, [text], last_event_id=first - 1)
    assert got["stats"].malformed == 1 and got["stats"].events == len(mixed) - 1
    assert got["last_event_id"] == int(mixed[-1].split("\n")[0][4:])

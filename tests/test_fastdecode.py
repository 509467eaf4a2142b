"""The stream's fast decode (msgspec into typed structs) gives exactly what the tolerant decoder gives, or hands over.

The simulator's own stream (every event kind its market produces, plus a burst) is decoded both ways and compared
event by event (``repr``: every field, Decimal digits and timestamp zones included; and the raw payload). Then the
same frames mutated the ways a deviating server might (case, numeric strings, NaN text, absurd exponents, ints for
ids, missing objects, unknown types and fields, odd timestamps...) and by hypothesis at random: for each, the fast
path either declines (the tolerant path then decides) or gives the identical event.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from _sim_support import market_envelopes
from ttmt_monitor.core.jsontext import LazyObject, dumps
from ttmt_monitor.core.models import Position
from ttmt_monitor.sources.ttmt.decode import KNOWN_EVENT_TYPES, decode_event, parse_json
from ttmt_monitor.sources.ttmt.fastdecode import decode_envelopes, decode_read, fast_event


@pytest.fixture(scope="module")
def corpus() -> Iterator[list[str]]:
    """The simulator's stream as it writes it: the data line of frames of every kind (half an hour of market, then
    a burst): all events but price ticks, and a thousand of those."""
    envelopes = market_envelopes(seed=11, seconds=1800, burst=200)
    ticks = [e for e in envelopes if e["type"] == "position_update"]
    keep = {id(e) for e in ticks[:500] + ticks[-500:]}
    yield [json.dumps(e, separators=(",", ":")) for e in envelopes if e["type"] != "position_update" or id(e) in keep]


def both_ways(text: str, direct: bool = True) -> tuple[Any, Any]:
    """(the tolerant decoder's event, the fast path's event or None) for one frame's data; ``direct=False``: the
    fast path's second tier only (the lenient structs), as a read whose frames do not all fit the first one."""
    try:
        envelope = parse_json(text)
    except ValueError:
        envelope = None
    tolerant = decode_event(envelope) if type(envelope) is dict else None
    return tolerant, fast_event(decode_envelopes([text], direct=direct)[0], text)


TIERS = pytest.mark.parametrize("direct", [True, False], ids=["direct", "lenient"])


def assert_same(tolerant: Any, fast: Any, text: str) -> None:
    assert tolerant is not None, text
    assert type(fast) is type(tolerant), text
    assert repr(fast) == repr(tolerant), text
    assert fast == tolerant
    assert isinstance(fast.raw, LazyObject)
    assert fast.raw == tolerant.raw and dict(fast.raw) == tolerant.raw
    assert fast.account_id == tolerant.account_id


@TIERS
def test_the_simulators_stream_decodes_identically_and_all_of_it_fast(corpus: list[str], direct: bool) -> None:
    kinds = {json.loads(t)["type"] for t in corpus}
    assert len(kinds & KNOWN_EVENT_TYPES) >= 4, kinds  # the corpus covers the event kinds, not just price ticks
    for text in corpus:
        tolerant, fast = both_ways(text, direct)
        assert fast is not None, text  # the contract's shape always takes the fast path
        assert_same(tolerant, fast, text)
    # One call per read gives what one call per frame gives.
    whole = decode_envelopes(corpus, direct=direct)
    assert [repr(fast_event(f, t)) for f, t in zip(whole, corpus, strict=True)] == [
        repr(decode_event(parse_json(t))) for t in corpus]
    # The first tier took the whole read: msgspec built the domain objects themselves.
    with_objects = [f for f in whole if type(f).__name__.removeprefix("_Direct").removeprefix("_") in _OBJECT_FRAMES]
    assert len(with_objects) > 100
    assert all(type(f).__name__.startswith("_Direct") == direct for f in with_objects)


_OBJECT_FRAMES = {"TradeExecuted", "TradeFinalized", "OrderFill", "PositionUpdate", "PositionClosed"}


def test_the_first_tier_builds_frozen_domain_objects_that_replace_works_on(corpus: list[str]) -> None:
    text = next(t for t in corpus if json.loads(t)["type"] == "position_update")
    frame = decode_envelopes([text])[0]
    assert type(frame).__name__ == "_DirectPositionUpdate"
    event = fast_event(frame, text)
    position = event.position
    assert type(position) is Position
    with pytest.raises(AttributeError):
        position.volume = Decimal(1)  # type: ignore[misc]
    moved = msgspec.structs.replace(position, current_price=Decimal("1.5"))
    assert moved.current_price == Decimal("1.5") and moved.id == position.id
    assert position.current_price != moved.current_price
    # The SignalRef msgspec built is swapped for the shared one the tolerant decoder gives.
    assert position.signal is decode_event(parse_json(text)).position.signal


def test_a_read_with_a_frame_short_of_a_field_goes_to_the_second_tier_whole(corpus: list[str]) -> None:
    """A Position without one of its members cannot be built by msgspec (the dataclass has no defaults): that
    read takes the lenient structs, every frame of it still fast and identical."""
    texts = [t for t in corpus if json.loads(t)["type"] == "position_update"][:5]
    env = parse_json(texts[2])
    del env["data"]["position"]["close_reason"]
    texts[2] = dumps(env)
    frames = decode_envelopes(texts)
    assert [type(f).__name__ for f in frames] == ["_PositionUpdate"] * 5
    for frame, text in zip(frames, texts, strict=True):
        assert_same(decode_event(parse_json(text)), fast_event(frame, text), text)
    # A frame of the first tier that the checks refuse (a member TTMT does not send) only declines itself.
    env = parse_json(texts[0])
    env["data"]["position"]["commission"] = Decimal("-1.20")
    texts[0] = dumps(env)
    del texts[2]
    frames = decode_envelopes(texts)
    assert [type(f).__name__ for f in frames] == ["_DirectPositionUpdate"] * 4
    assert fast_event(frames[0], texts[0]) is None
    assert decode_event(parse_json(texts[0])).position.commission is None  # the tolerant path ignores it
    assert all(fast_event(f, t) is not None for f, t in zip(frames[1:], texts[1:], strict=True))


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], bool]:
    def mutate(env: dict[str, Any]) -> bool:
        node: Any = env
        for key in path[:-1]:
            if not isinstance(node, dict) or key not in node:
                return False
            node = node[key]
        if not isinstance(node, dict):
            return False
        node[path[-1]] = value
        return True
    return mutate


def _drop(path: tuple[str, ...]) -> Callable[[dict[str, Any]], bool]:
    def mutate(env: dict[str, Any]) -> bool:
        node: Any = env
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or path[-1] not in node:
            return False
        del node[path[-1]]
        return True
    return mutate


# Where each kind keeps its object (the mutations below reach into it).
_OBJ = ("position", "trade", "order")
MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ("type upper case", lambda e: bool(e.update(type=e["type"].upper())) or True),
    ("unknown type", _set(("type",), "margin_call_warning")),
    ("control frame", lambda e: bool(e.clear() or e.update(type="recycle", reason="max_lifetime")) or True),
    ("no eventId", _drop(("eventId",))),
    ("eventId as text", lambda e: bool(e.update(eventId=str(e["eventId"]))) or True),
    ("negative eventId", _set(("eventId",), -5)),
    ("eventId true", _set(("eventId",), True)),
    ("no data", _drop(("data",))),
    ("data null", _set(("data",), None)),
    ("data a list", _set(("data",), [1, 2])),
    ("timestamp naive", _set(("timestamp",), "2026-03-01T10:00:00")),
    ("timestamp offset", _set(("timestamp",), "2026-03-01T10:00:00+02:00")),
    ("timestamp a number", _set(("timestamp",), 1700000000)),
    ("timestamp lower z", _set(("timestamp",), "2026-03-01t10:00:00z")),
    ("timestamp 7 digits", _set(("timestamp",), "2026-03-01T10:00:00.9999995Z")),
    ("timestamp 45 digits", _set(("timestamp",), "2026-03-01T10:00:00." + "1" * 45 + "Z")),
    ("extra envelope field", _set(("extra",), {"x": 1.5})),
    ("signal both null", _set(("data", "signal"), {"signal_id": None, "telegram_message_id": None})),
    ("signal a list", _set(("data", "signal"), ["x"])),
    ("signal id an int", _set(("data", "signal"), {"signal_id": 77, "telegram_message_id": 5})),
    ("message id text", _set(("data", "signal"), {"signal_id": "s", "telegram_message_id": "12"})),
    ("tp_level text", _set(("data", "tp_level"), "2")),
    ("tp_level 7", _set(("data", "tp_level"), 7)),
    ("tp_level 2.0", _set(("data", "tp_level"), Decimal("2.0"))),
    ("price as text", _set(("data", "price"), "2408.150")),
    ("price NaN text", _set(("data", "price"), "NaN")),
    ("price huge", _set(("data", "price"), Decimal("1E+50"))),
    ("trade id an int", _set(("data", "trade_id"), 12345)),
    ("new stop loss -0", _set(("data", "new_stop_loss"), Decimal("-0.0"))),
    ("unknown payload field", _set(("data", "margin"), Decimal("3.10"))),
]
for obj in _OBJ:
    MUTATIONS += [
        (f"{obj} missing", _drop(("data", obj))),
        (f"{obj} null", _set(("data", obj), None)),
        (f"{obj} a string", _set(("data", obj), "x")),
        (f"{obj} id missing", _drop(("data", obj, "id"))),
        (f"{obj} id empty", _set(("data", obj, "id"), "")),
        (f"{obj} id an int", _set(("data", obj, "id"), 42)),
        (f"{obj} direction lower", _set(("data", obj, "direction"), "buy")),
        (f"{obj} direction odd", _set(("data", obj, "direction"), "Short")),
        (f"{obj} status upper", _set(("data", obj, "status"), "OPEN")),
        (f"{obj} status unknown", _set(("data", obj, "status"), "frozen")),
        (f"{obj} status an int", _set(("data", obj, "status"), 3)),
        (f"{obj} volume text", _set(("data", obj, "volume"), "0.10")),
        (f"{obj} volume padded text", _set(("data", obj, "volume"), " 0.10 ")),
        (f"{obj} volume long text", _set(("data", obj, "volume"), "0.1" + "0" * 150)),  # in bounds, 153 chars
        (f"{obj} volume Infinity text", _set(("data", obj, "volume"), "-Infinity")),
        (f"{obj} volume tiny", _set(("data", obj, "volume"), Decimal("1E-45"))),
        (f"{obj} volume zero exp", _set(("data", obj, "volume"), Decimal("0E-50"))),
        (f"{obj} volume true", _set(("data", obj, "volume"), True)),
        (f"{obj} volume an int", _set(("data", obj, "volume"), 3)),
        (f"{obj} volume a big int", _set(("data", obj, "volume"), 10**45)),
        (f"{obj} stop loss many digits", _set(("data", obj, "stop_loss"), Decimal("2400.0000000000000000000001"))),
        (f"{obj} opened_at naive", _set(("data", obj, "opened_at"), "2026-03-01T10:00:00")),
        (f"{obj} opened_at offset", _set(("data", obj, "opened_at"), "2026-03-01T10:00:00-05:00")),
        (f"{obj} opened_at 7 digits", _set(("data", obj, "opened_at"), "2026-03-01T10:00:00.9999999Z")),
        (f"{obj} opened_at junk", _set(("data", obj, "opened_at"), "yesterday")),
        (f"{obj} opened_at 45 digits", _set(("data", obj, "opened_at"), "2026-03-01T10:00:00." + "9" * 45 + "Z")),
        (f"{obj} created_at lower z", _set(("data", obj, "created_at"), "2026-03-01t10:00:00z")),
        (f"{obj} tp_level text", _set(("data", obj, "tp_level"), "3")),
        (f"{obj} tp_level huge", _set(("data", obj, "tp_level"), 10**20)),
        (f"{obj} tp_level bool", _set(("data", obj, "tp_level"), False)),
        (f"{obj} unknown field", _set(("data", obj, "swap"), Decimal("1.25"))),
        (f"{obj} source field", _set(("data", obj, "source"), "elsewhere")),
        (f"{obj} label a number", _set(("data", obj, "account_label"), 7)),
        (f"{obj} take_profits short", _set(("data", obj, "take_profits"), [Decimal("1.5"), None])),
        (f"{obj} take_profits keyed", _set(("data", obj, "take_profits"), {"tp1": Decimal("1.5")})),
        (f"{obj} take_profits text", _set(("data", obj, "take_profits"), ["1.5", None, None, None, None, None])),
        (f"{obj} tp_hits list", _set(("data", obj, "tp_hits"), [True, False])),
        (f"{obj} tp_hits text", _set(("data", obj, "tp_hits"), {"tp1": "true"})),
        (f"{obj} tp_hits upper", _set(("data", obj, "tp_hits"), {"TP1": True, "tp2": False})),
        (f"{obj} positions embedded", _set(("data", obj, "positions"), [{"id": "p1", "volume": Decimal("0.5")},
                                                                         {"volume": 1}])),
        (f"{obj} orders odd", _set(("data", obj, "orders"), [{"id": "o1", "layer": "2"}])),
    ]


@TIERS
def test_mutated_frames_either_decode_identically_or_go_to_the_tolerant_path(corpus: list[str], direct: bool) -> None:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for text in corpus:
        env = parse_json(text)
        by_kind.setdefault(env["type"], []).append(env)
    samples = [envs[i] for envs in by_kind.values() for i in (0, len(envs) // 2, -1)]
    fast_taken = declined = 0
    for name, mutate in MUTATIONS:
        for original in samples:
            env = copy.deepcopy(original)
            if not mutate(env):
                continue
            text = dumps(env)
            tolerant, fast = both_ways(text, direct)
            if fast is None:
                declined += 1
                continue
            fast_taken += 1
            assert_same(tolerant, fast, f"{name}: {text}")
    # Both outcomes happen: harmless mutations stay fast, deviations are handed over.
    assert fast_taken > 20 and declined > 100, (fast_taken, declined)


@TIERS
def test_text_level_oddities(corpus: list[str], direct: bool) -> None:
    text = corpus[0]
    for odd in (
        text.replace('"data":{', '"data":{"id":"a","id":"b",'),  # duplicate keys: the last one wins in both
        text.replace('"eventId":', '"eventId":1,"eventId":'),
        text.replace("}", "} ", 1),
        text[:-1],  # cut short: not JSON
        "\ufeff" + text,
        text.replace('"data":{', '"data":{"note":"\\ud800",'),  # a lone surrogate
        text.replace(":", ": ", 3),
    ):
        tolerant, fast = both_ways(odd, direct)
        if fast is not None:
            assert_same(tolerant, fast, odd)
    # A read with a bad frame in it: the others still decode fast, the bad one is handed over.
    mixed = [corpus[0], corpus[1][:-3], corpus[2]]
    frames = decode_envelopes(mixed, direct=direct)
    assert frames[1] is None and frames[0] is not None and frames[2] is not None


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.text(max_size=12)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4) | st.sampled_from(
        ["NaN", "1e99", "BUY", "sell", "OPEN", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "", " 1.5 "]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@TIERS
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_field_values_decode_identically_or_go_to_the_tolerant_path(corpus: list[str], direct: bool,
                                                                          data: Any) -> None:
    env = parse_json(data.draw(st.sampled_from(corpus[:50] + corpus[-5:])))
    payload = env["data"]
    inner = next((payload[k] for k in _OBJ if isinstance(payload.get(k), dict)), payload)
    key = data.draw(st.sampled_from(sorted(inner)))
    inner[key] = data.draw(_json_values)
    text = dumps(env)
    tolerant, fast = both_ways(text, direct)
    if fast is not None:
        assert_same(tolerant, fast, text)


# --- a read at a time (decode_read: the plain tier for reads of position events, else frame by frame) ----------


def _reads(texts: list[str], size: int = 40) -> list[list[str]]:
    return [texts[i:i + size] for i in range(0, len(texts), size)]


def assert_read_same(texts: list[str]) -> tuple[int, int]:
    """decode_read over ``texts``: every frame either the tolerant decoder's event (identical) or None; the
    timestamps as received, or as the plain tier parsed them (the event's own, in UTC). Returns (frames decoded
    fast, frames handed over)."""
    events, stamps = decode_read(texts)
    assert len(events) == len(stamps) == len(texts)
    fast = declined = 0
    for text, event, stamp in zip(texts, events, stamps, strict=True):
        if event is None:
            declined += 1
            continue
        fast += 1
        envelope = parse_json(text)
        assert_same(decode_event(envelope), event, text)
        if isinstance(stamp, datetime):
            assert stamp == event.timestamp and stamp.tzinfo is UTC
        else:
            assert stamp == envelope.get("timestamp")
    return fast, declined


def test_a_read_of_position_events_takes_the_plain_tier_and_decodes_identically(
        corpus: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import ttmt_monitor.sources.ttmt.fastdecode as fd

    plain_reads = []
    real = fd._plain_events  # noqa: SLF001

    def spy(frames: Any, datas: Any) -> Any:
        out = real(frames, datas)
        plain_reads.append(out is not None)
        return out

    monkeypatch.setattr(fd, "_plain_events", spy)
    ticks = [t for t in corpus if json.loads(t)["type"] in ("position_update", "position_closed")]
    closed = [t for t in ticks if json.loads(t)["type"] == "position_closed"]
    assert len(ticks) > 500 and closed  # price ticks, and positions closing (a read of both kinds too)
    for read in _reads(ticks) + [closed[:5], ticks[:3] + closed[:2]]:
        assert assert_read_same(read) == (len(read), 0)
    assert plain_reads and all(plain_reads), "every read of position events went through the plain tier"
    # The domain objects are the real ones, frozen, with the SignalRefs' values of the tolerant decoder's.
    events, _ = decode_read(ticks[:2])
    position = events[0].position
    assert type(position) is Position and type(events[0]).__name__ == "PositionUpdated"
    with pytest.raises(AttributeError):
        position.volume = Decimal(1)  # type: ignore[misc]
    assert position.signal == decode_event(parse_json(ticks[0])).position.signal


def test_a_read_of_every_kind_decodes_identically_frame_by_frame(corpus: list[str]) -> None:
    for read in _reads(corpus, 25):
        assert assert_read_same(read) == (len(read), 0)


def test_mutated_frames_in_a_read_decode_identically_or_go_to_the_tolerant_path(corpus: list[str]) -> None:
    """Each mutation, alone in a read and amid good frames of the same kind: the read either decodes the mutated
    frame identically or hands it over, and its good neighbours still decode identically."""
    ticks = [t for t in corpus if json.loads(t)["type"] == "position_update"]
    by_kind: dict[str, list[str]] = {}
    for text in corpus:
        by_kind.setdefault(json.loads(text)["type"], []).append(text)
    samples = [texts[i] for texts in by_kind.values() for i in (0, -1)] + ticks[::97]
    fast = declined = 0
    for name, mutate in MUTATIONS:
        for original in samples:
            env = parse_json(original)
            if not mutate(env):
                continue
            text = dumps(env)
            for read in ([text], [ticks[0], text, ticks[1]]):
                got = assert_read_same(read)
                fast, declined = fast + got[0], declined + got[1]
            assert decode_read([ticks[0], text, ticks[1]])[0][0] is not None, name  # neighbours stay fast
    assert fast > 200 and declined > 100, (fast, declined)


def test_text_level_oddities_in_a_read(corpus: list[str]) -> None:
    tick = next(t for t in corpus if json.loads(t)["type"] == "position_update")
    for odd in (
        tick.replace('"position":{', '"position":{"id":"a","id":"b",'),  # duplicate keys: the last one wins
        tick.replace('"position":{', '"position":{"swap":1.5,"source":"x",'),  # members TTMT does not send
        tick.replace('"position":{', '"position":{"swap":"sNaN",'),  # (an sNaN cannot be hashed)
        tick.replace('"position":{', '"position":{"commission":"-sNaN5","swap":0,'),
        tick.replace('"position":{', '"position":{"~~swap: not sent by TTMT":null,'),
        tick.replace('"position":{', '"position":{"~~swap: not sent by TTMT":1,'),
        tick.replace('"signal":{', '"signal":{"signal_id":null,"telegram_message_id":null,"x":', 1),
        tick.replace('"signal":{', '"signal":{"signal_id":null,"telegram_message_id":7,"x":', 1),
        tick.replace('"signal":{', '"signal":{"signal_id":"","telegram_message_id":null,"x":', 1),
        tick.replace('}}}', '},"signal":{"signal_id":null,"telegram_message_id":null}}}', 1),  # (the event's own)
        tick.replace('"current_price":', '"current_price":1E+39,"x":', 1),
        tick.replace('"current_price":', '"current_price":1E+40,"x":', 1),
        tick.replace('"current_price":', '"current_price":1E-39,"x":', 1),
        tick.replace('"current_price":', '"current_price":1E-40,"x":', 1),
        tick.replace('"current_price":', '"current_price":0E-99,"x":', 1),
        tick.replace('"current_price":', '"current_price":"sNaN","x":', 1),
        tick.replace('"telegram_message_id":', '"telegram_message_id":999999999999999999,"x":', 1),
        tick.replace('"telegram_message_id":', '"telegram_message_id":1000000000000000000,"x":', 1),
        tick.replace('"telegram_message_id":', '"telegram_message_id":-999999999999999999,"x":', 1),
        tick.replace('"tp_level":', '"tp_level":7,"x":', 1),
        tick.replace('"tp_level":', '"tp_level":-999999999999999999,"x":', 1),
        tick.replace('"tp_level":', '"tp_level":1000000000000000000,"x":', 1),
        tick.replace('"tp_level":', '"tp_level":true,"x":', 1),
        tick.replace('"opened_at":"', '"opened_at":"2026-03-01T10:00:00+00:00","x":"', 1),
        tick.replace('"opened_at":"', '"opened_at":"2026-03-01T10:00:00+01:00","x":"', 1),
        tick.replace('"timestamp":"', '"timestamp":"2026-03-01T10:00:00","x":"', 1),
        tick.replace('"type":"position_update"', '"type":"position_closed"'),
        tick.replace("}", "} ", 1),
        tick[:-1],
    ):
        assert odd != tick  # each oddity is really in the frame
        for read in ([odd], [tick, odd], [odd, tick, tick]):
            assert_read_same(read)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_position_members_in_a_read_decode_identically_or_go_to_the_tolerant_path(corpus: list[str],
                                                                                         data: Any) -> None:
    ticks = [t for t in corpus if json.loads(t)["type"] in ("position_update", "position_closed")]
    env = parse_json(data.draw(st.sampled_from(ticks[:50] + ticks[-5:])))
    where = data.draw(st.sampled_from(["position", "signal", "envelope", "position signal"]))
    node = {"position": env["data"]["position"], "signal": env["data"], "envelope": env,
            "position signal": env["data"]["position"]}[where]
    if where.endswith("signal"):
        node = node["signal"] if isinstance(node.get("signal"), dict) else node
    key = data.draw(st.sampled_from(sorted(node) + ["extra"]))
    node[key] = data.draw(_json_values)
    text = dumps(env)
    assert_read_same([text, ticks[0]])

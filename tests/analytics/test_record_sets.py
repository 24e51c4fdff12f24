"""The compiled reader of record sets (``baton_scorer_native.read_record_set``) reads what
the general path (aiokafka's reader) reads — the records, offsets, timestamps, keys and
values of a range, and the offset to fetch next — and hands back, untouched, every set
it does not take: compressed, corrupt or malformed."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from aiokafka import TopicPartition
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from baton_analytics.source import Fetched, _read_general

native = pytest.importorskip("baton_scorer_native")

TP = TopicPartition("p.leads.events", 2)
GZIP = 1
LOG_APPEND_TIME = 0x08
CONTROL = 0x20

records = st.lists(
    st.tuples(
        st.integers(-(10**6), 10**6),  # timestamp, from the first record's
        st.none() | st.binary(max_size=20),  # key
        st.none() | st.binary(max_size=300),  # value
        st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=5)), max_size=2),
    ),
    min_size=1,
    max_size=30,
)


def batch(
    base_offset: int,
    rows: list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
    *,
    gaps: int = 0,
    flags: int = 0,
    compression: int = 0,
) -> bytes:
    """A v2 batch as a broker holds it: ``base_offset`` on, ``gaps`` offsets skipped after
    each record (as compaction leaves them), ``flags`` set in its attributes."""
    builder = DefaultRecordBatchBuilder(2, compression, 0, -1, -1, -1, 10**7)
    for i, (delta, key, value, headers) in enumerate(rows):
        builder.append(i * (1 + gaps), 1_700_000_000_000 + delta, key, value, headers)
    raw = bytearray(builder.build())
    raw[0:8] = struct.pack(">q", base_offset)
    if flags:
        attributes = struct.unpack_from(">h", raw, 21)[0] | flags
        struct.pack_into(">h", raw, 21, attributes)
    return resealed(bytes(raw))


def resealed(raw: bytes) -> bytes:
    """``raw`` (one batch) with its length and CRC made to fit its bytes again."""
    out = bytearray(raw)
    struct.pack_into(">i", out, 8, len(out) - 12)
    struct.pack_into(">I", out, 17, calc_crc32c(bytes(out[21:])))
    return bytes(out)


def both(raw: bytes, start: int, end: int) -> tuple[list[Fetched], int]:
    fast = native.read_record_set(raw, TP.topic, TP.partition, start, end, Fetched)
    general = _read_general(TP, raw, start, end)
    assert fast is not None, "the compiled reader gave the set back"
    assert fast == general
    assert all(type(r) is Fetched for r in fast[0])
    return fast


@settings(max_examples=200, deadline=None)
@given(
    sets=st.lists(st.tuples(records, st.integers(0, 3), st.booleans()), min_size=1, max_size=4),
    first=st.integers(0, 10**9),
    cut=st.data(),
)
def test_plain_record_sets_read_as_aiokafka_reads_them(
    sets: list[tuple[list, int, bool]], first: int, cut: st.DataObject
) -> None:
    raw, offset = b"", first
    for rows, gaps, log_append_time in sets:
        raw += batch(offset, rows, gaps=gaps, flags=LOG_APPEND_TIME if log_append_time else 0)
        offset += len(rows) * (1 + gaps) - gaps
    start = cut.draw(st.integers(first, offset), label="start")
    end = cut.draw(st.integers(start + 1, offset + 5), label="end")
    tail = cut.draw(st.integers(0, 40), label="bytes of a next batch the fetch cut off")

    got, position = both(raw + batch(offset, sets[0][0])[:tail], start, end)

    assert [r.offset for r in got] == sorted({r.offset for r in got})
    assert all(start <= r.offset < end for r in got)
    assert position <= offset or position >= end  # never into the batch that was cut off


def test_transaction_markers_are_passed_over() -> None:
    rows = [(0, b"k", b"v", [])] * 3
    raw = batch(10, rows) + batch(13, [(0, b"\0\0\0\0", b"\0" * 6, [])], flags=CONTROL)
    raw += batch(14, rows)

    got, position = both(raw, 10, 100)

    assert [r.offset for r in got] == [10, 11, 12, 14, 15, 16]
    assert position == 17


def test_log_append_time_gives_every_record_the_batchs_time() -> None:
    raw = batch(0, [(5, None, b"a", []), (9, None, b"b", [])], flags=LOG_APPEND_TIME)

    got, _ = both(raw, 0, 10)

    max_timestamp = struct.unpack_from(">q", raw, 35)[0]
    assert [r.timestamp for r in got] == [max_timestamp] * 2


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda raw: raw[:20] + bytes([raw[20] ^ 1]) + raw[21:], id="crc mismatch"),
        pytest.param(lambda raw: raw[:30] + bytes([raw[30] ^ 1]) + raw[31:], id="damaged body"),
        pytest.param(lambda raw: raw[:16] + b"\x01" + raw[17:], id="message format v1"),
        # Damage the CRC does not see (it was computed after): the general path raises.
        pytest.param(lambda raw: resealed(raw + b"\x00"), id="bytes after the last record"),
        pytest.param(lambda raw: resealed(raw[:57] + b"\xff" * 4 + raw[61:]), id="count < 0"),
        pytest.param(lambda raw: resealed(raw[:57] + b"\0\0\0\x05" + raw[61:]), id="count > 4"),
        pytest.param(lambda raw: resealed(raw[:-1] + b"\x02"), id="header count past the end"),
    ],
)
def test_sets_it_does_not_take_are_handed_back(mangle: Callable[[bytes], bytes]) -> None:
    raw = mangle(batch(0, [(0, b"k", b"value", [])] * 4))

    assert native.read_record_set(raw, TP.topic, TP.partition, 0, 10, Fetched) is None


def test_compressed_sets_are_handed_back_and_read_by_the_general_path() -> None:
    raw = batch(0, [(0, b"k", b"value %d" % i, []) for i in range(5)], compression=GZIP)

    assert native.read_record_set(raw, TP.topic, TP.partition, 0, 10, Fetched) is None
    got, position = _read_general(TP, raw, 2, 10)
    assert [r.value for r in got] == [b"value %d" % i for i in range(2, 5)] and position == 5


def test_the_record_type_must_be_a_tuple_type() -> None:
    with pytest.raises(TypeError, match="tuple type"):
        native.read_record_set(batch(0, [(0, None, b"v", [])]), "t", 0, 0, 1, dict)


def test_a_record_set_of_markers_and_a_cut_off_batch_moves_past_the_markers() -> None:
    marker = batch(5, [(0, b"\0\0\0\0", b"\0" * 6, [])], flags=CONTROL)
    raw = marker + batch(6, [(0, None, b"v", [])] * 3)[:30]

    got, position = both(raw, 5, 100)

    assert (got, position) == ([], 6)

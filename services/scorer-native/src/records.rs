//! The records of a Kafka record set, for `baton_analytics.source` (the replay's reader).
//!
//! A Fetch response carries, for each partition, a record set: record batches end to end.
//! `read_record_set` reads the records of `[start, end)` out of one, as the reader's
//! general path does with aiokafka's `MemoryRecords` — the same records, offsets,
//! timestamps, keys and values, and the same next position — without a Python object per
//! record besides the record itself. It takes message format v2 without compression
//! (what Baton's producers write); on anything else (a compressed or older batch, a CRC
//! that does not match, a batch it cannot parse) it returns None, and the general path
//! reads the set and decides.
//!
//! Batch layout (big-endian): baseOffset i64, batchLength i32, partitionLeaderEpoch i32,
//! magic i8, crc u32 (CRC-32C of everything after it), attributes i16, lastOffsetDelta
//! i32, baseTimestamp i64, maxTimestamp i64, producerId i64, producerEpoch i16,
//! baseSequence i32, record count i32, then the records: length, attributes i8,
//! timestampDelta, offsetDelta, key length, key, value length, value, headers — the
//! lengths and deltas zigzag varints.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple, PyType};

const LOG_OVERHEAD: usize = 12; // baseOffset and batchLength
const HEADER: usize = 61; // a v2 batch up to its first record
const CRC_FROM: usize = 21; // the CRC covers the batch from its attributes on
const COMPRESSION: i16 = 0x07;
const LOG_APPEND_TIME: i16 = 0x08;
const CONTROL: i16 = 0x20;

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// A zigzag varint (up to 64 bits), or None past the end or at a malformed one.
    fn varint(&mut self) -> Option<i64> {
        let mut raw: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *self.buf.get(self.at)?;
            self.at += 1;
            if shift == 63 && b > 1 {
                return None; // past 64 bits
            }
            raw |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
    }

    /// A length-prefixed byte string; a negative length is null.
    fn bytes(&mut self) -> Option<Option<&'a [u8]>> {
        let len = self.varint()?;
        if len < 0 {
            return Some(None);
        }
        let end = self.at.checked_add(usize::try_from(len).ok()?)?;
        let out = self.buf.get(self.at..end)?;
        self.at = end;
        Some(Some(out))
    }
}

struct Record<'a> {
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// The records of `[start, end)` in `raw` and the position after them, as the general
/// path reads them; None where it must decide.
fn parse(raw: &[u8], start: i64, end: i64) -> Option<(Vec<Record<'_>>, i64)> {
    let mut out = Vec::new();
    let mut position = start;
    let mut at = 0;
    while position < end && raw.len() - at >= LOG_OVERHEAD {
        let base_offset = be_i64(raw, at);
        let size = LOG_OVERHEAD + usize::try_from(be_i32(raw, at + 8)).ok()?;
        if raw.len() - at < size {
            break; // the fetch ended inside this batch: the next fetch reads it
        }
        let batch = &raw[at..at + size];
        at += size;
        if batch.len() < HEADER || batch[16] != 2 || crc32c(&batch[CRC_FROM..]) != be_u32(batch, 17)
        {
            return None;
        }
        let attributes = be_i16(batch, 21);
        let next_offset = base_offset.checked_add(i64::from(be_i32(batch, 23)) + 1)?;
        if attributes & CONTROL != 0 {
            position = next_offset; // transaction markers
            continue;
        }
        if attributes & COMPRESSION != 0 {
            return None;
        }
        let first_timestamp = be_i64(batch, 27);
        let max_timestamp = be_i64(batch, 35);
        let log_append_time = attributes & LOG_APPEND_TIME != 0;
        let mut c = Cursor {
            buf: batch,
            at: HEADER,
        };
        let count = usize::try_from(be_i32(batch, 57)).ok()?;
        let mut read = 0;
        while read < count {
            read += 1;
            let length = usize::try_from(c.varint()?).ok()?;
            let record_end = c.at.checked_add(length)?;
            if record_end > batch.len() || *batch.get(c.at)? >= 0x80 {
                return None; // attributes: one byte (unused)
            }
            c.at += 1;
            let timestamp_delta = c.varint()?;
            let offset = base_offset.checked_add(c.varint()?)?;
            let key = c.bytes()?;
            let value = c.bytes()?;
            // Headers are not kept, but checked as the general path reads them.
            for _ in 0..usize::try_from(c.varint()?).ok()? {
                std::str::from_utf8(c.bytes()??).ok()?;
                c.bytes()?;
            }
            if c.at != record_end {
                return None;
            }
            if offset < start {
                continue; // a batch can begin before the position
            }
            if offset >= end {
                break;
            }
            let timestamp = if log_append_time {
                max_timestamp
            } else {
                first_timestamp.checked_add(timestamp_delta)?
            };
            out.push(Record {
                offset,
                timestamp,
                key,
                value,
            });
        }
        if read == count && c.at != batch.len() {
            return None; // bytes after the last record
        }
        position = next_offset;
    }
    Some((out, position))
}

/// `(records, position)`: the records of `[start, end)` in the record set `raw`, each a
/// `record_type` (a tuple type: topic, partition, offset, timestamp, key, value), and the
/// offset to fetch next; None when the general reader must take the set.
#[pyfunction]
pub fn read_record_set<'py>(
    py: Python<'py>,
    raw: &[u8],
    topic: Bound<'py, PyAny>,
    partition: Bound<'py, PyAny>,
    start: i64,
    end: i64,
    record_type: Bound<'py, PyType>,
) -> PyResult<Option<(Bound<'py, PyList>, i64)>> {
    let tp = record_type.as_type_ptr();
    // SAFETY: `tp` is a live type object; these only read it.
    let is_tuple = unsafe { ffi::PyType_IsSubtype(tp, std::ptr::addr_of_mut!(ffi::PyTuple_Type)) };
    if is_tuple == 0 {
        return Err(PyTypeError::new_err("record_type must be a tuple type"));
    }
    let Some((records, position)) = parse(raw, start, end) else {
        return Ok(None);
    };
    let list = PyList::empty(py);
    for r in &records {
        let items = [
            topic.clone().into_any(),
            partition.clone().into_any(),
            r.offset.into_pyobject(py)?.into_any(),
            r.timestamp.into_pyobject(py)?.into_any(),
            optional_bytes(py, r.key),
            optional_bytes(py, r.value),
        ];
        // SAFETY: a tuple type's instances are tuples: `tp_alloc` gives one of six
        // (null) items, and each is set once, with a reference this tuple now owns.
        // (From Python 3.14 a tuple caches its hash, and its constructor marks the cache
        // empty after `tp_alloc`; this would have to as well. pyo3 0.23 refuses to build
        // for 3.14, so this cannot run there unnoticed.)
        let record = unsafe {
            let alloc = (*tp).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
            let obj = alloc(tp, items.len() as ffi::Py_ssize_t);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            for (i, item) in items.into_iter().enumerate() {
                ffi::PyTuple_SET_ITEM(obj, i as ffi::Py_ssize_t, item.into_ptr());
            }
            Bound::from_owned_ptr(py, obj)
        };
        list.append(record)?;
    }
    Ok(Some((list, position)))
}

/// `TimeOrder.feed`'s loop (`baton_analytics.source`): appends `(key, record)` to
/// `buffer` for each of one partition's `records` (tuples: offset at 2, timestamp at 3),
/// the key `((high * n + rank) << 63) + offset` with `high` the largest timestamp of the
/// partition so far. Returns the new `high` and the last key; None, with nothing
/// appended, when an item is not such a tuple or a key would not fit 127 bits (the
/// Python loop then does it).
#[pyfunction]
pub fn time_order_keys<'py>(
    py: Python<'py>,
    records: &Bound<'py, PyList>,
    buffer: &Bound<'py, PyList>,
    high: &Bound<'py, PyAny>,
    n: i64,
    rank: i64,
) -> PyResult<Option<(i64, Bound<'py, PyAny>)>> {
    let Ok(mut high) = high.extract::<i64>() else {
        return Ok(None);
    };
    let mut keys = Vec::with_capacity(records.len());
    for r in records.iter() {
        let Ok(t) = r.downcast::<PyTuple>() else {
            return Ok(None);
        };
        let (Ok(offset), Ok(timestamp)) = (
            t.get_item(2).and_then(|o| o.extract::<i64>()),
            t.get_item(3).and_then(|o| o.extract::<i64>()),
        ) else {
            return Ok(None);
        };
        high = high.max(timestamp);
        let key = i128::from(high)
            .checked_mul(i128::from(n))
            .and_then(|k| k.checked_add(i128::from(rank)))
            .and_then(|k| k.checked_mul(1i128 << 63))
            .and_then(|k| k.checked_add(i128::from(offset)));
        let Some(key) = key else {
            return Ok(None);
        };
        keys.push(key);
    }
    let mut last = None;
    for (r, key) in records.iter().zip(keys) {
        let key = key.into_pyobject(py)?;
        buffer.append(PyTuple::new(py, [key.clone().into_any(), r])?)?;
        last = Some(key);
    }
    Ok(last.map(|k| (high, k.into_any())))
}

fn optional_bytes<'py>(py: Python<'py>, b: Option<&[u8]>) -> Bound<'py, PyAny> {
    match b {
        Some(b) => PyBytes::new(py, b).into_any(),
        None => py.None().into_bound(py),
    }
}

/// CRC-32C (Castagnoli), as Kafka checks record batches: with SSE 4.2 when the CPU has
/// it, else a table.
fn crc32c(data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("sse4.2") {
            // SAFETY: the CPU has SSE 4.2, checked just above.
            return unsafe { crc32c_sse42(data) };
        }
    }
    crc32c_table(data)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn crc32c_sse42(data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut crc: u64 = 0xffff_ffff;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        crc = _mm_crc32_u64(crc, u64::from_le_bytes(w.try_into().unwrap()));
    }
    let mut crc = crc as u32;
    for &b in words.remainder() {
        crc = _mm_crc32_u8(crc, b);
    }
    !crc
}

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc32c_table(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc = CRC32C_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value_both_ways() {
        // The CRC-32C check value of "123456789" (RFC 3720's polynomial).
        assert_eq!(crc32c_table(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in [0, 1, 7, 8, 9, 63, 64, 65, 999, 1000] {
            assert_eq!(crc32c(&long[..n]), crc32c_table(&long[..n]), "{n} bytes");
        }
    }

    #[test]
    fn varints_are_zigzag() {
        let mut c = Cursor {
            buf: &[0x00, 0x01, 0x02, 0x03, 0xac, 0x02],
            at: 0,
        };
        let got: Vec<i64> = (0..5).map(|_| c.varint().unwrap()).collect();
        assert_eq!(got, vec![0, -1, 1, -2, 150]);
        assert!(Cursor {
            buf: &[0x80],
            at: 0
        }
        .varint()
        .is_none());
    }
}

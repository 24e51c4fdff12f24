//! Analytics' reader of Kafka record sets, for `baton_analytics.source` (the replay's
//! reader). It shares the extension module with the scoring core, and nothing else
//! (its `unsafe` is in `crate::ffi`, as the crate's is).
//!
//! A Fetch response carries, for each partition, a record set: record batches end to end.
//! `read_record_set` reads the records of `[start, end)` out of one, as the reader's
//! general path does with aiokafka's `MemoryRecords` — the same records, offsets,
//! timestamps, keys and values, and the same next position — without a Python object per
//! record besides the record itself. It takes message format v2 without compression
//! (what Baton's producers write); on anything else (a compressed or older batch, a CRC
//! that does not match, a batch it cannot parse) it returns None, and the general path
//! reads the set and decides.

mod batch;
mod crc32c;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple, PyType};

use crate::ffi::TupleType;
use batch::parse;

/// `(records, position)`: the records of `[start, end)` in the record set `raw`, each a
/// `record_type` (a tuple type: topic, partition, offset, timestamp, key, value), and the
/// offset to fetch next; None when the general reader must take the set.
#[pyfunction]
pub(crate) fn read_record_set<'py>(
    py: Python<'py>,
    raw: &[u8],
    topic: Bound<'py, PyAny>,
    partition: Bound<'py, PyAny>,
    start: i64,
    end: i64,
    record_type: Bound<'py, PyType>,
) -> PyResult<Option<(Bound<'py, PyList>, i64)>> {
    let Some(tuple_type) = TupleType::of(&record_type) else {
        return Err(PyTypeError::new_err("record_type must be a tuple type"));
    };
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
        let record = tuple_type.instance(items)?;
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
pub(crate) fn time_order_keys<'py>(
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

/// The bytes, or None.
fn optional_bytes<'py>(py: Python<'py>, b: Option<&[u8]>) -> Bound<'py, PyAny> {
    match b {
        Some(b) => PyBytes::new(py, b).into_any(),
        None => py.None().into_bound(py),
    }
}

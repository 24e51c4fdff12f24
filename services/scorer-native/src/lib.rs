//! Baton's scoring core, compiled. It computes exactly what `baton_scorer.lifecycle` (the
//! Python reference) computes — the same floating-point operations in the same order, the
//! same transition ids, reasons and rounding — and `tests/scorer/test_native_core.py`
//! checks the two agree on every field. What needs Python stays in Python and is called
//! back: fit points (regular expressions over traits), matchers that look at properties
//! or use ``[`` URL patterns, and building the event-shape plans.
//!
//! Events come as LeadEvent objects, or (``score_records``, for ``baton replay``) as the
//! bytes on ``leads.events``, read here when they are in a layout the core can read
//! exactly as pydantic would ([`wire`]), else left to pydantic.
//!
//! The crate also holds, apart, analytics' reader of Kafka record sets
//! ([`kafka_records`]): it ships in the same extension module, and shares nothing with
//! scoring but [`ffi`].
//!
//! Pure: no I/O, no clock reads. Every `unsafe` block is in [`ffi`].
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

// Pure pieces, tested with `cargo test`.
mod decay;
mod glob;
mod hashing;
mod interner;
mod numeric;
mod timestamps;
mod wire;

// Scoring, on Python objects.
mod bindings;
mod event;
mod lead_index;
mod matcher;
mod scoring;
mod state;
mod transition;

// Analytics' record-set reader.
mod kafka_records;

mod ffi;

use pyo3::prelude::*;

#[pymodule]
fn baton_scorer_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<state::State>()?;
    m.add_class::<scoring::Core>()?;
    m.add_class::<event::WireEvent>()?;
    m.add_class::<lead_index::LeadIndex>()?;
    m.add_function(wrap_pyfunction!(bindings::url_glob_match, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::py_round_py, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::reads_exact_layout_py, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::set_parse_ahead, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::utc_from_timestamp, m)?)?;
    m.add_function(wrap_pyfunction!(kafka_records::read_record_set, m)?)?;
    m.add_function(wrap_pyfunction!(kafka_records::time_order_keys, m)?)?;
    Ok(())
}

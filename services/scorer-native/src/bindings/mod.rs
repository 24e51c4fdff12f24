//! The Python-facing API (``baton_scorer_native``): the ``LeadState`` and ``Core``
//! methods, and the functions tests and measurements call to compare one piece of the
//! core with Python's own (rounding, URL globs, the layout reader, ``occurred_at``).
//! Each is a thin layer over the pure modules; the module itself is assembled in
//! ``lib.rs``.

mod core_methods;
mod state_methods;

use std::sync::atomic::Ordering;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTzInfo;

use crate::glob::glob_match;
use crate::numeric::{py_round, POW10};
use crate::scoring::parse_ahead_from;
use crate::transition::{is_utc, utc_datetime};

/// ``round(x, digits)`` as the core computes it (for the test that compares it with
/// Python's ``round``).
#[pyfunction]
#[pyo3(name = "py_round")]
pub(crate) fn py_round_py(x: f64, digits: usize) -> PyResult<f64> {
    if digits >= POW10.len() {
        return Err(PyValueError::new_err("digits must be below 16"));
    }
    Ok(py_round(x, digits))
}

/// Set how many of a run's records ``score_records`` reads itself before it hands the
/// rest to a second thread (0: all to the thread; a number past any batch: none), for
/// tests and measurements. Returns the setting it replaces.
#[pyfunction]
pub(crate) fn set_parse_ahead(from_records: usize) -> usize {
    parse_ahead_from().swap(from_records, Ordering::Relaxed)
}

/// Whether the core's own reader of the exact layout reads ``record`` (else serde reads
/// it, or pydantic decides), for tests: records as ``to_bytes`` writes them must take it.
#[pyfunction]
#[pyo3(name = "reads_exact_layout")]
pub(crate) fn reads_exact_layout_py(record: &[u8]) -> bool {
    crate::wire::reads_exact_layout(record)
}

/// ``fnmatch.fnmatchcase`` as the core matches URLs (patterns without ``[``), for tests.
#[pyfunction]
pub(crate) fn url_glob_match(pattern: &str, text: &str) -> PyResult<bool> {
    if pattern.contains('[') {
        return Err(PyValueError::new_err(
            "patterns with [ are matched by Python",
        ));
    }
    Ok(glob_match(&pattern.chars().collect::<Vec<_>>(), text))
}

/// ``datetime.fromtimestamp(t, tz)`` as the core builds a transition's ``occurred_at``
/// with ``tz`` as its zone, for the test that checks it equals Python's.
#[pyfunction]
pub(crate) fn utc_from_timestamp<'py>(
    t: f64,
    tz: &Bound<'py, PyTzInfo>,
    fromtimestamp: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    utc_datetime(t, tz, is_utc(tz.as_any())?, fromtimestamp)
}

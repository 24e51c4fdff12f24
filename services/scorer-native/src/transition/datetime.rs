//! A transition's ``occurred_at``: ``datetime.fromtimestamp(t, utc)``, built from its
//! fields when the zone is ``datetime.timezone.utc``.

use pyo3::prelude::*;
use pyo3::types::{PyDateTime, PyTzInfo};

use crate::timestamps::utc_fields;

/// Whether ``tz`` is ``datetime.timezone.utc`` (whose ``fromutc`` changes nothing).
pub(crate) fn is_utc(tz: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = tz.py();
    Ok(tz.is(&py.import("datetime")?.getattr("timezone")?.getattr("utc")?))
}

/// ``fromtimestamp(t, utc)``: built from ``utc_fields`` when ``direct`` (``utc`` is
/// ``datetime.timezone.utc``) and it has them, else the call, which raises what it raises
/// (a year outside 1-9999, a time that is not finite).
pub(crate) fn utc_datetime<'py>(
    t: f64,
    utc: &Bound<'py, PyTzInfo>,
    direct: bool,
    fromtimestamp: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    match utc_fields(t).filter(|_| direct) {
        Some((year, month, day, hour, minute, second, micro)) => Ok(PyDateTime::new(
            utc.py(),
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
            Some(utc),
        )?
        .into_any()),
        None => fromtimestamp.call1((t, utc)),
    }
}

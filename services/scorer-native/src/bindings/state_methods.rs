//! ``LeadState``'s Python methods: built from and written to the dict
//! ``state.LeadState.to_dict`` writes, and its fields read one by one.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::hashing::FxIndexMap;
use crate::interner::intern;
use crate::state::{add, Stage, State};

#[pymethods]
impl State {
    #[new]
    fn new(py: Python<'_>) -> State {
        State::empty(py)
    }

    /// The state ``state.LeadState.to_dict`` writes, with engagement already at one
    /// reference time (``groups``, ``signals``, ``origin`` as given).
    #[staticmethod]
    #[pyo3(signature = (raw, groups, signals, origin=None))]
    fn from_parts(
        raw: &Bound<'_, PyDict>,
        groups: &Bound<'_, PyDict>,
        signals: &Bound<'_, PyDict>,
        origin: Option<f64>,
    ) -> PyResult<State> {
        let py = raw.py();
        let mut state = State::empty(py);
        let get = |key: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
            Ok(raw.get_item(key)?.filter(|v| !v.is_none()))
        };
        let required = |key: &str| -> PyResult<Bound<'_, PyAny>> {
            raw.get_item(key)?
                .ok_or_else(|| PyValueError::new_err(format!("lead state has no {key:?}")))
        };
        state.stage = Stage::parse(required("stage")?.extract::<&str>()?)?;
        state.fit = required("fit")?.extract()?;
        for (k, v) in groups.iter() {
            add(&mut state.groups, intern(k.extract()?), v.extract()?);
        }
        for (k, v) in signals.iter() {
            add(&mut state.signals, intern(k.extract()?), v.extract()?);
        }
        state.origin = origin;
        if let Some(capped) = get("capped")? {
            for (label, windows) in capped.downcast::<PyDict>()?.iter() {
                let mut out = FxIndexMap::default();
                for (key, entries) in windows.downcast::<PyDict>()?.iter() {
                    let mut window = Vec::new();
                    for entry in entries.try_iter()? {
                        // JSON gives lists, to_dict gives lists: [at, event id, counted].
                        let entry: Vec<Bound<'_, PyAny>> = entry?.extract()?;
                        let [at, id, counted] = entry.as_slice() else {
                            return Err(PyValueError::new_err(format!(
                                "capped entry of {label} needs [at, event_id, counted], got {} items",
                                entry.len()
                            )));
                        };
                        let id: String = id.extract()?;
                        window.push((at.extract()?, Arc::from(id.as_str()), counted.extract()?));
                    }
                    out.insert(key.extract::<String>()?, window);
                }
                state.capped.insert(label.extract()?, out);
            }
        }
        let traits = required("traits")?;
        state.traits = traits.downcast::<PyDict>()?.clone().unbind();
        state.email = get("email")?.map(|e| e.extract()).transpose()?;
        for id in required("recent_event_ids")?.try_iter()? {
            let id: String = id?.extract()?;
            if !state.has_seen(&id) {
                state.remember(&id);
            }
        }
        state.watermark = get("watermark")?.map(|v| v.extract()).transpose()?;
        state.last_engaged_at = get("last_engaged_at")?.map(|v| v.extract()).transpose()?;
        state.stage_at = get("stage_at")?.map(|v| v.extract()).transpose()?;
        if let Some(bant) = get("bant")? {
            for f in bant.try_iter()? {
                state.bant.push(f?.extract()?);
            }
        }
        state.sql_ready = get("sql_ready")?
            .map(|v| v.extract())
            .transpose()?
            .unwrap_or(false);
        state.due = get("due")?.map(|v| v.extract()).transpose()?;
        state.hold_until = get("hold_until")?.map(|v| v.extract()).transpose()?;
        Ok(state)
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("stage", self.stage.as_str())?;
        d.set_item("fit", self.fit)?;
        d.set_item("groups", self.groups_dict(py)?)?;
        d.set_item("signals", self.signals_dict(py)?)?;
        d.set_item("origin", self.origin)?;
        let capped = PyDict::new(py);
        for (label, windows) in &self.capped {
            let w = PyDict::new(py);
            for (key, entries) in windows {
                let list = PyList::empty(py);
                for (at, id, counted) in entries {
                    list.append(PyList::new(
                        py,
                        [
                            at.into_pyobject(py)?.into_any(),
                            PyString::new(py, id).into_any(),
                            counted.into_pyobject(py)?.into_any(),
                        ],
                    )?)?;
                }
                w.set_item(key, list)?;
            }
            capped.set_item(label, w)?;
        }
        d.set_item("capped", capped)?;
        d.set_item("traits", self.traits.bind(py))?;
        d.set_item("email", self.email.as_deref())?;
        let seen: Vec<&str> = self.seen.iter().collect();
        d.set_item("recent_event_ids", PyList::new(py, seen)?)?;
        d.set_item("watermark", self.watermark)?;
        d.set_item("last_engaged_at", self.last_engaged_at)?;
        d.set_item("stage_at", self.stage_at)?;
        d.set_item("bant", PyList::new(py, &self.bant)?)?;
        d.set_item("sql_ready", self.sql_ready)?;
        d.set_item("due", self.due)?;
        d.set_item("hold_until", self.hold_until)?;
        Ok(d)
    }

    fn is_seen(&self, id: &str) -> bool {
        self.has_seen(id)
    }

    #[getter]
    fn stage(&self) -> &'static str {
        self.stage.as_str()
    }
    #[getter]
    fn fit(&self) -> f64 {
        self.fit
    }
    #[getter]
    fn origin(&self) -> Option<f64> {
        self.origin
    }
    #[getter]
    fn watermark(&self) -> Option<f64> {
        self.watermark
    }
    #[getter]
    fn due(&self) -> Option<f64> {
        self.due
    }
    #[getter]
    fn email(&self) -> Option<String> {
        self.email.clone()
    }
    #[getter]
    fn traits<'py>(&self, py: Python<'py>) -> Bound<'py, PyDict> {
        self.traits.bind(py).clone()
    }
    #[getter]
    fn groups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.groups_dict(py)
    }
    #[getter]
    fn signals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.signals_dict(py)
    }
    #[getter]
    fn last_engaged_at(&self) -> Option<f64> {
        self.last_engaged_at
    }
    #[getter]
    fn stage_at(&self) -> Option<f64> {
        self.stage_at
    }
    #[getter]
    fn bant<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.bant)
    }
    #[getter]
    fn sql_ready(&self) -> bool {
        self.sql_ready
    }
    #[getter]
    fn hold_until(&self) -> Option<f64> {
        self.hold_until
    }
}

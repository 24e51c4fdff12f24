//! A lead's scoring state (``baton_scorer.state.LeadState``): its stage, fit, decaying engagement
//! by group and signal, capped rules' windows, and the window of event ids it has seen.
//! Its Python methods are in ``bindings::state``.

mod seen;

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use smallvec::SmallVec;

use crate::hashing::FxIndexMap;
use crate::interner::name_of;
use seen::SeenIds;

/// Insertion-ordered (id, value) pairs: the ``dict`` of the Python core, small and inline.
/// Kept inside the state object itself (spilling to the heap only past four entries):
/// with thousands of leads, each pointer followed to another allocation is a cache miss.
pub(crate) type Pairs = SmallVec<[(u32, f64); 4]>;

/// ``d[key] = d.get(key, 0.0) + credit``.
#[inline]
pub(crate) fn add(pairs: &mut Pairs, key: u32, credit: f64) {
    match pairs.iter_mut().find(|p| p.0 == key) {
        Some(p) => p.1 += credit,
        None => pairs.push((key, 0.0 + credit)),
    }
}

/// How many event ids a lead's dedup window keeps (``lifecycle.DEDUP_WINDOW``).
pub(crate) const DEDUP_WINDOW: usize = 500;

/// ``baton_shared.schemas.Stage``.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Stage {
    New,
    Mql,
    Sql,
    Recycled,
    Disqualified,
    Customer,
}

impl Stage {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Mql => "mql",
            Stage::Sql => "sql",
            Stage::Recycled => "recycled",
            Stage::Disqualified => "disqualified",
            Stage::Customer => "customer",
        }
    }

    pub(crate) fn parse(value: &str) -> PyResult<Stage> {
        Ok(match value {
            "new" => Stage::New,
            "mql" => Stage::Mql,
            "sql" => Stage::Sql,
            "recycled" => Stage::Recycled,
            "disqualified" => Stage::Disqualified,
            "customer" => Stage::Customer,
            other => return Err(PyValueError::new_err(format!("unknown stage {other:?}"))),
        })
    }
}
/// A capped rule's window: ``[at, event id, points counted]`` per event, by time.
pub(crate) type Window = Vec<(f64, Arc<str>, f64)>;

/// One lead's state: the fields of ``state.LeadState``.
#[pyclass(module = "baton_scorer_native", name = "LeadState")]
pub struct State {
    pub(crate) stage: Stage,
    pub(crate) fit: f64,
    pub(crate) groups: Pairs,
    pub(crate) signals: Pairs,
    pub(crate) origin: Option<f64>,
    pub(crate) capped: FxIndexMap<String, FxIndexMap<String, Window>>,
    pub(crate) traits: Py<PyDict>,
    pub(crate) email: Option<String>,
    pub(crate) seen: SeenIds,
    pub(crate) watermark: Option<f64>,
    pub(crate) last_engaged_at: Option<f64>,
    pub(crate) stage_at: Option<f64>,
    pub(crate) bant: Vec<String>,
    pub(crate) sql_ready: bool,
    pub(crate) due: Option<f64>,
    /// Until when (event time) a nurtured lead's score cannot qualify it again.
    pub(crate) hold_until: Option<f64>,
}

impl State {
    pub(crate) fn empty(py: Python<'_>) -> State {
        State {
            stage: Stage::New,
            fit: 0.0,
            groups: SmallVec::new(),
            signals: SmallVec::new(),
            origin: None,
            capped: FxIndexMap::default(),
            traits: PyDict::new(py).unbind(),
            email: None,
            seen: SeenIds::default(),
            watermark: None,
            last_engaged_at: None,
            stage_at: None,
            bant: Vec::new(),
            sql_ready: false,
            due: None,
            hold_until: None,
        }
    }

    pub(crate) fn remember(&mut self, id: &str) {
        self.seen.push(id);
    }

    pub(crate) fn has_seen(&self, id: &str) -> bool {
        self.seen.contains(id)
    }
}

impl State {
    pub(crate) fn groups_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for &(k, v) in &self.groups {
            d.set_item(&*name_of(k), v)?;
        }
        Ok(d)
    }
    pub(crate) fn signals_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for &(k, v) in &self.signals {
            d.set_item(&*name_of(k), v)?;
        }
        Ok(d)
    }
}

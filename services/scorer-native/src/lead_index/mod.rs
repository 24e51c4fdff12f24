//! ``LeadIndex``: lead id -> its state in a replay's ``states`` dict (the same object),
//! and the lowest first-event time this index wrote, found from the id's bytes without
//! building a Python string. Entries are only ever added to ``states`` (a lead's state
//! object is never replaced), so a state found once stays the right one.
//!
//! ``score_records`` fetches what it will need into cache a few records ahead, through
//! the ``prefetch_*`` hints: the lead's slot, then its state, then the parts of the
//! state kept apart from it.

mod table;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::ffi::prefetch;
use crate::hashing::lead_hash;
use crate::state::State;
use crate::wire::lead_id_at_a_glance;
use table::{LeadTable, Slot};

/// One lead's entry.
pub(crate) struct IndexEntry {
    pub(crate) state: Py<State>,
    pub(crate) first_at: f64,
}

const _: () = assert!(
    std::mem::size_of::<Slot<IndexEntry>>() == 64,
    "a slot is one cache line"
);

/// The index of one ``states`` dict.
#[pyclass(module = "baton_scorer_native")]
#[derive(Default)]
pub struct LeadIndex {
    table: LeadTable<IndexEntry>,
}

#[pymethods]
impl LeadIndex {
    #[new]
    fn new() -> LeadIndex {
        LeadIndex::default()
    }
}

/// The lead's state in ``states``, added (empty) when it has none.
pub(crate) fn state_in<'py>(
    states: &Bound<'py, PyDict>,
    lead: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, State>> {
    Ok(match states.get_item(lead)? {
        Some(found) => found.downcast_into::<State>()?,
        None => {
            let created = Bound::new(states.py(), State::empty(states.py()))?;
            states.set_item(lead, &created)?;
            created
        }
    })
}

impl LeadIndex {
    /// The entry of ``lead_id``, its state found in (or added to) ``states``.
    pub(crate) fn entry(
        &mut self,
        py: Python<'_>,
        states: &Bound<'_, PyDict>,
        lead_id: &str,
    ) -> PyResult<&mut IndexEntry> {
        self.table.get_or_insert_with(lead_id.as_bytes(), || {
            let state = state_in(states, PyString::new(py, lead_id).as_any())?;
            Ok(IndexEntry {
                state: state.unbind(),
                first_at: f64::INFINITY,
            })
        })
    }

    /// Prefetch hint: the slot of the lead a record names. Returns the lead's hash (0
    /// when the record gives none at a glance) for the later stages.
    pub(crate) fn prefetch_slot(&self, record: &[u8]) -> u64 {
        let Some(id) = lead_id_at_a_glance(record) else {
            return 0;
        };
        let hash = lead_hash(id);
        match self.table.first_slot(hash) {
            Some(slot) => {
                prefetch((slot as *const Slot<IndexEntry>).cast(), 64);
                hash
            }
            None => 0,
        }
    }

    /// Prefetch hint: the state of the lead with this hash, when the index has it (with
    /// thousands of leads a state is rarely still in cache).
    pub(crate) fn prefetch_state(&self, hash: u64) {
        if let Some(entry) = self.table.by_hash(hash) {
            prefetch(
                entry.state.as_ptr().cast(),
                std::mem::size_of::<State>() + 64,
            );
        }
    }

    /// Prefetch hint: the parts of the state of the lead with this hash that live apart
    /// from it (its state is in cache by now: :meth:`prefetch_state` two records
    /// earlier): where its dedup window writes next, its groups and signals.
    pub(crate) fn prefetch_window(&self, py: Python<'_>, hash: u64) {
        if let Some(entry) = self.table.by_hash(hash) {
            if let Ok(state) = entry.state.bind(py).try_borrow() {
                state.seen.prefetch_tail();
                // A lead with more groups or signals than fit inline keeps them apart.
                for pairs in [&state.groups, &state.signals] {
                    if pairs.spilled() {
                        prefetch(pairs.as_ptr().cast(), std::mem::size_of_val(&pairs[..]));
                    }
                }
            }
        }
    }
}

//! ``Core``'s Python methods: the Python reference's functions on one rules
//! version (``score_event``, ``expire``, ``apply_rep_action``, ``due_at``, ...), and the
//! batch forms ``baton replay`` calls (``score_batch``, ``score_records``).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::event::{timestamp, PyFields};
use crate::lead_index::{state_in, LeadIndex};
use crate::scoring::{keep_first_event_at, Core, RepAction};
use crate::state::{Stage, State};
use crate::transition::Built;

#[pymethods]
impl Core {
    /// ``spec``: the scalar settings (see ``baton_scorer.native``); ``rules`` and
    /// ``compiled``: the Python rules, for plans, matchers and fit.
    #[new]
    fn new(
        spec: &Bound<'_, PyDict>,
        rules: PyObject,
        compiled: PyObject,
        fit_points: PyObject,
    ) -> PyResult<Core> {
        Core::from_spec(spec, rules, compiled, fit_points)
    }

    /// ``lifecycle.score_event``: score ``event`` into ``state`` in place; the transitions.
    #[pyo3(signature = (state, event, at=None))]
    fn score_event<'py>(
        &mut self,
        py: Python<'py>,
        state: &Bound<'py, State>,
        event: &Bound<'py, PyAny>,
        at: Option<f64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut st = state.try_borrow_mut()?;
        let out = PyList::empty(py);
        let at = match at {
            Some(at) => at,
            None => timestamp(py, event)?,
        };
        let fields = PyFields::of(py, event)?;
        self.score_into(py, &mut st, &fields.view(event)?, at, &out)?;
        Ok(out)
    }

    /// Score a batch of events (``baton replay``): each against its lead's state in
    /// ``states`` (lead id -> LeadState, created as needed), recording each lead's
    /// earliest scored event time in ``first_event_at``. Returns the transitions and
    /// how many events were duplicates.
    fn score_batch<'py>(
        &mut self,
        py: Python<'py>,
        states: &Bound<'py, PyDict>,
        events: &Bound<'py, PyAny>,
        first_event_at: &Bound<'py, PyDict>,
    ) -> PyResult<(Bound<'py, PyList>, usize)> {
        let out = PyList::empty(py);
        let mut duplicates = 0;
        for event in events.try_iter()? {
            let event = event?;
            let lead = event.getattr(intern!(py, "lead_id"))?;
            let state = state_in(states, &lead)?;
            let at = timestamp(py, &event)?;
            let mut st = state.try_borrow_mut()?;
            let fields = PyFields::of(py, &event)?;
            if !self.score_into(py, &mut st, &fields.view(&event)?, at, &out)? {
                duplicates += 1;
                continue;
            }
            keep_first_event_at(first_event_at, &lead, at)?;
        }
        Ok((out, duplicates))
    }

    /// ``score_batch`` over encoded LeadEvents (the values on ``leads.events``), from
    /// ``records[start]`` on. Records in the exact shape ``LeadEvent.to_bytes`` writes are
    /// read here; the first record that is not (another JSON layout, an invalid event,
    /// or one with an ``anonymous_id``, which needs identity stitching) stops the run
    /// so the caller can decode it with pydantic. Returns the transitions, how many
    /// records were scored (duplicates included), how many were duplicates, and the
    /// index it stopped at (``len(records)`` when it read them all).
    ///
    /// ``index`` (one per ``states`` dict) finds a lead's state without building a
    /// Python string for its id; ``states`` stays the one record of the leads.
    ///
    /// On a machine with more than one core, the records of a run past its first
    /// ``set_parse_ahead`` (64 unless set) are read on a second thread while this one
    /// scores, up to 1,024 records per thread: reading a record needs no Python, and it
    /// is about a third of the work. The results are the same either way; only the
    /// order of the work changes. (A run that stops within its first 64 records, at an
    /// anonymous event say, costs no thread; one that stops later, at most one segment's
    /// references and a few chunks read for nothing.)
    fn score_records<'py>(
        &mut self,
        py: Python<'py>,
        states: &Bound<'py, PyDict>,
        index: &Bound<'py, LeadIndex>,
        records: &Bound<'py, PyList>,
        start: usize,
        first_event_at: &Bound<'py, PyDict>,
    ) -> PyResult<(Bound<'py, PyList>, usize, usize, usize)> {
        let mut index = index.try_borrow_mut()?;
        self.score_records_from(py, states, &mut index, records, start, first_event_at)
    }

    /// A Transition as scoring builds it, from given values (for the test that checks
    /// it equals the one ``transitions.move`` builds).
    #[allow(clippy::too_many_arguments)] // the Python signature: one argument per field
    #[pyo3(signature = (transition_id, lead_id, from_stage, to_stage, score, fit, engagement,
        reason, reason_kind, express, trigger_id, trigger_name, trigger_at, signals, email,
        traits))]
    fn build_transition(
        &self,
        py: Python<'_>,
        transition_id: String,
        lead_id: &str,
        from_stage: &str,
        to_stage: &str,
        score: f64,
        fit: f64,
        engagement: f64,
        reason: &str,
        reason_kind: &str,
        express: bool,
        trigger_id: &str,
        trigger_name: Option<&str>,
        trigger_at: f64,
        signals: Vec<(String, f64)>,
        email: Option<&str>,
        traits: &Bound<'_, PyDict>,
    ) -> PyResult<PyObject> {
        self.maker.build(
            py,
            &Built {
                transition_id,
                lead_id,
                from_stage: Stage::parse(from_stage)?,
                to_stage: Stage::parse(to_stage)?,
                score,
                fit,
                engagement,
                reason,
                reason_kind,
                express,
                trigger_id,
                trigger_name,
                trigger_at,
                rules_version: &self.version,
                signals: &signals,
                email,
                traits,
            },
        )
    }

    /// ``actions.expire``: fire the recycle timer if due at ``now`` (in place).
    fn expire<'py>(
        &mut self,
        py: Python<'py>,
        state: &Bound<'py, State>,
        lead_id: &str,
        now: f64,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut st = state.try_borrow_mut()?;
        let out = PyList::empty(py);
        self.expire_into(py, &mut st, lead_id, now, &out)?;
        Ok(out)
    }

    /// ``actions.apply_rep_action`` (in place): a rep's ``qualified``, or an outcome
    /// (``won``, ``lost``, ``rejected``) as ``outcomes.outcome_move`` decided it:
    /// ``outcome`` is its (to stage, reason kind, reason, hold until).
    #[pyo3(signature = (state, lead_id, action_id, kind, at, bant=Vec::new(), outcome=None))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn apply_rep_action<'py>(
        &mut self,
        py: Python<'py>,
        state: &Bound<'py, State>,
        lead_id: &str,
        action_id: &str,
        kind: &str,
        at: f64,
        bant: Vec<String>,
        outcome: Option<(String, String, String, Option<f64>)>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut st = state.try_borrow_mut()?;
        let out = PyList::empty(py);
        let action = RepAction {
            lead_id,
            action_id,
            kind,
            at,
            bant,
        };
        match outcome {
            None => self.rep_action_into(py, &mut st, action, &out)?,
            Some((to, reason_kind, reason, hold_until)) => {
                let to = (Stage::parse(&to)?, reason_kind.as_str(), reason);
                self.outcome_into(py, &mut st, action, to, hold_until, &out)?
            }
        }
        Ok(out)
    }

    /// ``due.due_at``: when an SQL lead is recycled if nothing else happens.
    fn due_at_of(&self, state: &Bound<'_, State>) -> PyResult<Option<f64>> {
        Ok(self.due_at(&*state.try_borrow()?))
    }

    fn score_at(&self, state: &Bound<'_, State>, t: f64) -> PyResult<f64> {
        Ok(self.score_at_inner(&*state.try_borrow()?, t))
    }

    fn engagement_at(&self, state: &Bound<'_, State>, t: f64) -> PyResult<f64> {
        Ok(self.engagement_at_inner(&*state.try_borrow()?, t))
    }

    #[getter]
    fn version(&self) -> String {
        self.version.clone()
    }

    /// Whether Transition and Signal instances are made without calling
    /// ``object.__new__`` and ``object.__setattr__`` (see ``ffi::DirectModel``).
    #[getter]
    fn builds_directly(&self) -> bool {
        self.maker.builds_directly()
    }
}

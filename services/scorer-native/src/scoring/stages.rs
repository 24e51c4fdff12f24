//! A lead's stage moves (``baton_scorer.transitions``, ``actions``), the transitions they build, and when an SQL lead falls due for
//! recycling (``baton_scorer.due``).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use super::{Core, Trigger, TOP_SIGNALS};
use crate::decay::sum_falls_below_at;
use crate::interner::name_of;
use crate::numeric::{isclose, pow2, py_float_cmp, py_round};
use crate::state::{Stage, State};
use crate::transition::{stable_id, Built};

/// Where a stage move goes, and why.
pub(super) struct Move<'a> {
    pub(super) to: Stage,
    pub(crate) kind: &'a str,
    pub(crate) reason: String,
    pub(crate) express: bool,
}

impl Move<'_> {
    /// A move that is not an express lane.
    pub(super) fn new(to: Stage, kind: &str, reason: String) -> Move<'_> {
        Move {
            to,
            kind,
            reason,
            express: false,
        }
    }
}

/// A rep's ``qualified`` on a lead (``actions.apply_rep_action``); outcomes come
/// decided by ``outcomes.outcome_move`` (see ``Core::outcome_into``).
pub(crate) struct RepAction<'a> {
    pub(crate) lead_id: &'a str,
    pub(crate) action_id: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) at: f64,
    pub(crate) bant: Vec<String>,
}

/// The action's trigger, the first time the lead sees its id (remembered from now on);
/// None for an action already applied.
fn first_time(st: &mut State, action: &RepAction<'_>) -> Option<Trigger> {
    if st.has_seen(action.action_id) {
        return None;
    }
    st.remember(action.action_id);
    Some(Trigger {
        id: action.action_id.to_owned(),
        name: Some(format!("rep {}", action.kind)),
        at: action.at,
    })
}

impl Core {
    /// ``actions.apply_rep_action``: the action applied to ``st`` in place, its
    /// transition (if any) appended to ``out``.
    pub(crate) fn rep_action_into(
        &self,
        py: Python<'_>,
        st: &mut State,
        action: RepAction<'_>,
        out: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        let Some(trigger) = first_time(st, &action) else {
            return Ok(());
        };
        if action.kind == "qualified" {
            let mut fields: Vec<String> = st.bant.clone();
            fields.extend(action.bant);
            fields.sort();
            fields.dedup();
            st.bant = fields;
            if matches!(st.stage, Stage::New | Stage::Mql | Stage::Recycled)
                && self.missing_bant(st).is_empty()
            {
                let t = match st.watermark {
                    Some(w) if w != 0.0 => w,
                    _ => action.at,
                };
                let t = if t >= action.at { t } else { action.at };
                let bar = self.sql
                    + if st.stage == Stage::Recycled {
                        self.hysteresis
                    } else {
                        0.0
                    };
                if st.sql_ready || self.score_at_inner(st, t) >= bar {
                    let why = format!("qualified by rep ({})", st.bant.join(", "));
                    let tr = self.do_move(
                        py,
                        st,
                        action.lead_id,
                        &trigger,
                        Move::new(Stage::Sql, "qualification", why),
                    )?;
                    out.append(tr)?;
                }
            }
        }
        Ok(())
    }

    /// A rep's outcome (``won``, ``lost``, ``rejected``) as ``outcomes.outcome_move``
    /// decided it: the lead moved to ``to`` (held in nurture until ``hold_until``).
    pub(crate) fn outcome_into(
        &self,
        py: Python<'_>,
        st: &mut State,
        action: RepAction<'_>,
        (to, reason_kind, reason): (Stage, &str, String),
        hold_until: Option<f64>,
        out: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        let Some(trigger) = first_time(st, &action) else {
            return Ok(());
        };
        if hold_until.is_some() {
            st.hold_until = hold_until;
        }
        let to = Move::new(to, reason_kind, reason);
        out.append(self.do_move(py, st, action.lead_id, &trigger, to)?)?;
        Ok(())
    }

    /// The qualification fields the rules require that the lead does not have yet.
    fn missing_bant(&self, st: &State) -> Vec<String> {
        if !self.qualification_required {
            return Vec::new();
        }
        self.bant
            .iter()
            .filter(|f| !st.bant.contains(f))
            .cloned()
            .collect()
    }

    /// ``transitions.decide``: whether a lead that scored ``score`` (or took an express
    /// lane) moves to SQL or MQL.
    pub(super) fn decide(
        &self,
        py: Python<'_>,
        st: &mut State,
        lead_id: &str,
        trigger: &Trigger,
        lane: Option<String>,
        score: f64,
    ) -> PyResult<Option<PyObject>> {
        let stage = st.stage;
        if matches!(stage, Stage::Disqualified | Stage::Sql | Stage::Customer) {
            return Ok(None);
        }
        if let Some(hold) = st.hold_until {
            // Nurtured for a while after a rep's outcome: only an express lane moves it.
            if lane.is_none() && trigger.at < hold {
                return Ok(None);
            }
        }
        let (sql_bar, sql_bar_g) = if stage == Stage::Recycled {
            (self.sql + self.hysteresis, &self.recycled_bar_g)
        } else {
            (self.sql + 0.0, &self.sql_bar_g)
        };
        if lane.is_some() || score >= sql_bar {
            let express = lane.is_some();
            let (kind, mut reason) = match &lane {
                Some(lane) => ("express_lane", format!("express lane: {lane}")),
                None => (
                    "threshold",
                    format!("score {score:.1} reached SQL threshold {sql_bar_g}"),
                ),
            };
            let missing = self.missing_bant(st);
            if missing.is_empty() {
                let to = Move {
                    to: Stage::Sql,
                    kind,
                    reason,
                    express,
                };
                return self.do_move(py, st, lead_id, trigger, to).map(Some);
            }
            st.sql_ready = true;
            if stage == Stage::New {
                reason.push_str(&format!(
                    "; SQL awaits qualification ({})",
                    missing.join(", ")
                ));
                let to = Move::new(Stage::Mql, kind, reason);
                return self.do_move(py, st, lead_id, trigger, to).map(Some);
            }
            return Ok(None);
        }
        if stage == Stage::New && score >= self.mql {
            let reason = format!("score {score:.1} reached MQL threshold {}", self.mql_g);
            let to = Move::new(Stage::Mql, "threshold", reason);
            return self.do_move(py, st, lead_id, trigger, to).map(Some);
        }
        Ok(None)
    }

    /// ``transitions.move``: the transition to ``to``, and the state moved there.
    pub(super) fn do_move(
        &self,
        py: Python<'_>,
        st: &mut State,
        lead_id: &str,
        trigger: &Trigger,
        to: Move<'_>,
    ) -> PyResult<PyObject> {
        let Move {
            to,
            kind,
            reason,
            express,
        } = to;
        let t = st.watermark.unwrap_or(trigger.at);
        let t = if t >= trigger.at { t } else { trigger.at };
        let engagement = self.engagement_at_inner(st, t);
        let signals = self.top_signals(st, t);
        let transition = self.maker.build(
            py,
            &Built {
                transition_id: stable_id(&[lead_id, to.as_str(), &trigger.id]),
                lead_id,
                from_stage: st.stage,
                to_stage: to,
                score: py_round(st.fit + engagement, 6),
                fit: py_round(st.fit, 6),
                engagement: py_round(engagement, 6),
                reason: &reason,
                reason_kind: kind,
                express,
                trigger_id: &trigger.id,
                trigger_name: trigger.name.as_deref(),
                trigger_at: trigger.at,
                rules_version: &self.version,
                signals: &signals,
                email: st.email.as_deref(),
                traits: st.traits.bind(py),
            },
        )?;
        st.stage = to;
        st.stage_at = Some(trigger.at);
        st.due = self.due_floor(st, t);
        if to != Stage::Mql {
            st.sql_ready = false;
        }
        Ok(transition)
    }

    /// The ``TOP_SIGNALS`` signals with the most points at ``t``, largest first.
    fn top_signals(&self, st: &State, t: f64) -> Vec<(String, f64)> {
        let origin = match st.origin {
            None => return Vec::new(),
            Some(o) => o,
        };
        let mut values: Vec<(f64, Arc<str>)> = st
            .signals
            .iter()
            .filter(|p| p.1 > 0.0)
            .map(|&(label, a)| {
                (
                    a * pow2((origin - t) / self.half_life_of_signal(label)),
                    name_of(label),
                )
            })
            .collect();
        // Python: sort (value, label) tuples in reverse.
        values.sort_by(|a, b| py_float_cmp(b.0, a.0).then_with(|| b.1.cmp(&a.1)));
        values
            .into_iter()
            .take(TOP_SIGNALS)
            .map(|(v, label)| (label.to_string(), py_round(v, 3)))
            .collect()
    }

    pub(crate) fn engagement_at_inner(&self, st: &State, t: f64) -> f64 {
        let origin = match st.origin {
            None => return 0.0,
            Some(o) => o,
        };
        // Python's ``sum``: 0 plus each part, left to right.
        let mut total = 0.0;
        for &(g, a) in &st.groups {
            total += a * pow2((origin - t) / self.half_life_of_group(g));
        }
        total
    }

    pub(crate) fn score_at_inner(&self, st: &State, t: f64) -> f64 {
        st.fit + self.engagement_at_inner(st, t)
    }

    /// When the lead goes cold (no engagement for ``cold_days``), if the rules say.
    fn cold_due(&self, st: &State) -> Option<f64> {
        let cold = self.cold_days?;
        let since = st.last_engaged_at.or(st.stage_at)?;
        let other = match st.stage_at {
            Some(s) if s != 0.0 => s,
            _ => since,
        };
        let start = if since >= other { since } else { other };
        Some(start + cold * 86_400.0)
    }

    /// ``due.due_at``: when an SQL lead is recycled if nothing else happens.
    pub(crate) fn due_at(&self, st: &State) -> Option<f64> {
        if st.stage != Stage::Sql {
            return None;
        }
        let mut times: Vec<f64> = Vec::new();
        if let Some(cold) = self.cold_due(st) {
            times.push(cold);
        }
        if let (Some(below), Some(origin)) = (self.below, st.origin) {
            let parts: Vec<(f64, f64, f64)> = st
                .groups
                .iter()
                .map(|&(g, a)| (a, origin, self.half_life_of_group(g)))
                .collect();
            if let Some(crossing) = sum_falls_below_at(&parts, below - st.fit) {
                times.push(crossing);
            }
        }
        let mut best: Option<f64> = None;
        for t in times {
            best = Some(match best {
                None => t,
                Some(b) => {
                    if t < b {
                        t
                    } else {
                        b
                    }
                }
            });
        }
        best
    }

    /// ``due.due_floor``: a lower bound of ``due_at``, cheap when every group is
    /// positive (a sum of decaying parts stays above ``level`` until
    /// ``t + h_min·log2(S(t)/level)``); exact otherwise.
    fn due_floor(&self, st: &State, t: f64) -> Option<f64> {
        if st.stage != Stage::Sql {
            return None;
        }
        let cold = self.cold_due(st);
        let below = match (self.below, st.origin) {
            (Some(b), Some(_)) if !st.groups.is_empty() => b,
            _ => return cold,
        };
        let level = below - st.fit;
        let min_group = st.groups.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        if level <= 0.0 || st.groups.len() == 1 || min_group < 0.0 {
            return self.due_at(st);
        }
        let total = self.engagement_at_inner(st, t);
        if total <= level {
            return self.due_at(st);
        }
        let h_min = st
            .groups
            .iter()
            .map(|p| self.half_life_of_group(p.0))
            .fold(f64::INFINITY, f64::min);
        let bound = t + h_min * (total / level).log2();
        match cold {
            None => Some(bound),
            Some(c) => Some(if bound < c { bound } else { c }),
        }
    }

    /// ``actions.expire``: fires the recycle timer if due at ``now``.
    pub(crate) fn expire_into(
        &self,
        py: Python<'_>,
        st: &mut State,
        lead_id: &str,
        now: f64,
        out: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        let due = self.due_at(st);
        let due = match due {
            Some(d) if d <= now => d,
            _ => {
                st.due = due;
                return Ok(());
            }
        };
        let cold = self.cold_due(st);
        let reason = match cold {
            Some(c) if isclose(due, c) => format!("no engagement for {} days", self.cold_g),
            _ => format!("score decayed below recycle level {}", self.below_g),
        };
        if st.watermark.is_none_or(|w| due > w) {
            st.watermark = Some(due);
        }
        let id: String = PyString::new(py, "timer:")
            .add(due.into_pyobject(py)?.repr()?)?
            .extract()?;
        let trigger = Trigger {
            id,
            name: Some("recycle timer".to_owned()),
            at: due,
        };
        let t = self.do_move(
            py,
            st,
            lead_id,
            &trigger,
            Move::new(Stage::Recycled, "recycle", reason),
        )?;
        out.append(t)?;
        Ok(())
    }
}

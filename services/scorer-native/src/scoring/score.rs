//! One event scored into a lead's state (``lifecycle.score_event``): the dedup window,
//! a timer that fell due, fit, the matching rules' decaying credit (capped rules per
//! window), then whether the lead moves stage.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use smallvec::SmallVec;
use std::hash::{Hash, Hasher};

use super::stages::Move;
use super::{opt_str, Core, Plan, Trigger, CAP_HORIZON_SECONDS, MAX_PLANS};
use crate::event::Ev;
use crate::hashing::FxHasher;
use crate::matcher::Matcher;
use crate::numeric::{pow2, py_float_cmp};
use crate::state::{add, Stage, State, DEDUP_WINDOW};

impl Core {
    /// Score ``event`` at ``at`` into ``st``; false when it was a duplicate.
    pub(crate) fn score_into<'py>(
        &mut self,
        py: Python<'py>,
        st: &mut State,
        ev: &Ev<'_, 'py>,
        at: f64,
        out: &Bound<'py, PyList>,
    ) -> PyResult<bool> {
        let event_id = ev.event_id;
        if st.has_seen(event_id) {
            return Ok(false);
        }
        st.remember(event_id);
        if st.seen.len() > DEDUP_WINDOW {
            st.seen.forget_oldest();
        }
        let lead_id = ev.lead_id;
        let name = ev.name;

        if let Some(due) = st.due {
            if at > due {
                self.expire_into(py, st, lead_id, at, out)?;
            }
        }
        if st.watermark.is_none_or(|w| at > w) {
            st.watermark = Some(at);
        }

        let mut lowered_due = false;
        let email = ev.email;
        let email_set = email.is_some_and(|e| !e.is_empty());
        if ev.traits.is_some() || (email_set && email != st.email.as_deref()) {
            if let Some(traits) = &ev.traits {
                let merged = self
                    .merge_traits
                    .call1(py, (st.traits.bind(py), traits))?;
                st.traits = merged.downcast_bound::<PyDict>(py)?.clone().unbind();
            }
            if email_set {
                st.email = email.map(str::to_owned);
            }
            let fit: f64 = self
                .fit_points
                .call1(
                    py,
                    (
                        st.traits.bind(py),
                        st.email.as_deref(),
                        self.py_rules.bind(py),
                    ),
                )?
                .extract(py)?;
            lowered_due = fit < st.fit;
            st.fit = fit;
        }

        let plan_index = self.plan_for(py, ev)?;
        let (hash, slot) = plan_index;
        let mut matched: SmallVec<[usize; 8]> = SmallVec::new();
        let (express, has_express_matches) = {
            let plan = &self.plans[&hash][slot];
            matched.extend_from_slice(&plan.fixed);
            for (index, matcher) in &plan.dynamic {
                if matcher.matches(py, ev, &self.wire_types)? {
                    matched.push(*index);
                }
            }
            (plan.express.clone(), !plan.express_matches.is_empty())
        };
        if !matched.is_empty() {
            let mut origin = match st.origin {
                None => {
                    st.origin = Some(at);
                    at
                }
                Some(o) => o,
            };
            if at - origin > self.rebase_after {
                origin = self.rebase(st, at);
            }
            for &index in &matched {
                let rule = &self.rules[index];
                let points = rule.points;
                if points > 0.0 {
                    if st.last_engaged_at.is_none_or(|last| at > last) {
                        st.last_engaged_at = Some(at);
                    }
                } else if points < 0.0 {
                    lowered_due = true;
                }
                if rule.cap_points.is_none() {
                    let credit = points * pow2((at - origin) / rule.half_life);
                    add(&mut st.groups, rule.group_id, credit);
                    add(&mut st.signals, rule.label_id, credit);
                } else {
                    self.add_capped(st, index, event_id, at);
                }
            }
        }

        if !self.competitors.is_empty()
            && !matches!(st.stage, Stage::Disqualified | Stage::Customer)
            && self.is_competitor(st.email.as_deref())
        {
            let trigger = Trigger {
                id: event_id.to_owned(),
                name: name.map(str::to_owned),
                at,
            };
            let t = self.do_move(
                py,
                st,
                lead_id,
                &trigger,
                Move::new(
                    Stage::Disqualified,
                    "disqualified",
                    "competitor email domain".to_owned(),
                ),
            )?;
            out.append(t)?;
            return Ok(true);
        }
        let stage = st.stage;
        if stage != Stage::Sql && stage != Stage::Disqualified {
            let mut lane = express;
            if lane.is_none() && has_express_matches {
                let plan = &self.plans[&hash][slot];
                for m in &plan.express_matches {
                    if m.matches(py, ev, &self.wire_types)? {
                        lane = Some(plan.express_label.clone());
                        break;
                    }
                }
            }
            let mut score = st.fit;
            if let Some(origin) = st.origin {
                let t = st.watermark.unwrap_or(at);
                for &(g, a) in &st.groups {
                    score += a * pow2((origin - t) / self.half_life_of_group(g));
                }
            }
            let bar = match stage {
                Stage::New => self.mql,
                Stage::Recycled => self.sql + self.hysteresis,
                _ => self.sql,
            };
            if lane.is_some() || score >= bar {
                let trigger = Trigger {
                    id: event_id.to_owned(),
                    name: name.map(str::to_owned),
                    at,
                };
                if let Some(t) = self.decide(py, st, lead_id, &trigger, lane, score)? {
                    out.append(t)?;
                }
            }
        }
        if st.stage == Stage::Sql && (st.due.is_none() || lowered_due) {
            st.due = self.due_at(st);
        }
        Ok(true)
    }

    /// The plan for the event's shape, from the Python ``CompiledRules.plan`` once per shape.
    fn plan_for<'py>(&mut self, py: Python<'py>, ev: &Ev<'_, 'py>) -> PyResult<(u64, usize)> {
        let (type_, name, cat) = (ev.type_, ev.name, ev.page_category);
        let mut hasher = FxHasher::default();
        (type_, name, cat).hash(&mut hasher);
        let hash = hasher.finish();
        if let Some(bucket) = self.plans.get(&hash) {
            for (i, plan) in bucket.iter().enumerate() {
                if plan.key.0 == type_
                    && plan.key.1.as_deref() == name
                    && plan.key.2.as_deref() == cat
                {
                    return Ok((hash, i));
                }
            }
        }
        if self.plan_count >= MAX_PLANS {
            self.plans.clear();
            self.plan_count = 0;
        }
        let plan = self
            .compiled
            .bind(py)
            .call_method1(intern!(py, "plan"), (ev.object(py, &self.wire_types)?,))?;
        let index_of = |rule: &Bound<'_, PyAny>| -> PyResult<usize> {
            let label: String = rule.getattr(intern!(py, "label"))?.extract()?;
            self.by_label
                .get(&label)
                .copied()
                .ok_or_else(|| PyValueError::new_err(format!("rule {label:?} is not in the core")))
        };
        let mut fixed = Vec::new();
        for rule in plan.getattr(intern!(py, "static"))?.try_iter()? {
            fixed.push(index_of(&rule?)?);
        }
        let mut dynamic = Vec::new();
        for rule in plan.getattr(intern!(py, "dynamic"))?.try_iter()? {
            let rule = rule?;
            let matcher = rule.getattr(intern!(py, "match"))?;
            if matcher.is_none() {
                return Err(PyTypeError::new_err("a dynamic rule without a matcher"));
            }
            dynamic.push((index_of(&rule)?, Matcher::of(&matcher)?));
        }
        let mut express_matches = Vec::new();
        for m in plan.getattr(intern!(py, "express_matches"))?.try_iter()? {
            express_matches.push(Matcher::of(&m?)?);
        }
        let built = Plan {
            key: (
                type_.to_owned(),
                name.map(str::to_owned),
                cat.map(str::to_owned),
            ),
            fixed,
            dynamic,
            express: opt_str(&plan.getattr(intern!(py, "express"))?)?,
            express_matches,
            express_label: plan.getattr(intern!(py, "express_label"))?.extract()?,
        };
        let bucket = self.plans.entry(hash).or_default();
        bucket.push(built);
        self.plan_count += 1;
        Ok((hash, bucket.len() - 1))
    }

    /// ``lifecycle._rebase``: moves the reference time forward to ``to``, rescaling every
    /// stored value; returns ``to``.
    fn rebase(&self, st: &mut State, to: f64) -> f64 {
        let origin = st.origin.expect("rebase needs an origin");
        for i in 0..st.groups.len() {
            let (g, a) = st.groups[i];
            st.groups[i].1 = a * pow2((origin - to) / self.half_life_of_group(g));
        }
        for i in 0..st.signals.len() {
            let (l, a) = st.signals[i];
            st.signals[i].1 = a * pow2((origin - to) / self.half_life_of_signal(l));
        }
        st.origin = Some(to);
        to
    }

    /// A capped rule's credit for an event: the window's events re-counted in time order
    /// up to the cap, each change credited at its own time; old windows dropped.
    fn add_capped(&self, st: &mut State, index: usize, event_id: &str, at: f64) {
        let rule = &self.rules[index];
        let key = match rule.window_s {
            None => "all".to_owned(),
            Some(w) => format!("{}", (at / w).floor() as i64),
        };
        let mut credits: Vec<(f64, f64)> = Vec::new();
        {
            let windows = st.capped.entry(rule.label.clone()).or_default();
            let entries = windows.entry(key.clone()).or_default();
            entries.push((at, Arc::from(event_id), 0.0));
            entries.sort_by(|a, b| py_float_cmp(a.0, b.0).then_with(|| a.1.cmp(&b.1)));
            let mut remaining = rule.cap_points.unwrap_or(0.0);
            let mut kept = Vec::with_capacity(entries.len());
            for entry in entries.drain(..) {
                let counted = if rule.points <= remaining {
                    rule.points
                } else {
                    remaining
                };
                remaining -= counted;
                let mut entry = entry;
                if counted != entry.2 {
                    credits.push((counted - entry.2, entry.0));
                    entry.2 = counted;
                }
                if counted > 0.0 {
                    kept.push(entry);
                }
            }
            windows.insert(key, kept);
        }
        for (points, when) in credits {
            self.credit(st, index, points, when);
        }
        if let (Some(w), Some(watermark)) = (rule.window_s, st.watermark) {
            let oldest = ((watermark - CAP_HORIZON_SECONDS) / w).floor() as i64;
            if let Some(windows) = st.capped.get_mut(&rule.label) {
                windows.retain(|k, _| k.parse::<i64>().map_or(true, |k| k >= oldest));
            }
        }
    }

    /// ``points`` of a rule, earned at ``at``, added to the lead's group and signal.
    fn credit(&self, st: &mut State, index: usize, points: f64, at: f64) {
        let rule = &self.rules[index];
        let origin = match st.origin {
            None => {
                st.origin = Some(at);
                at
            }
            Some(o) => o,
        };
        let credit = points * pow2((at - origin) / rule.half_life);
        add(&mut st.groups, rule.group_id, credit);
        add(&mut st.signals, rule.label_id, credit);
    }
}

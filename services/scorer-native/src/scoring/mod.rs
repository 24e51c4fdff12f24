//! Scoring: ``Core``, one rules version compiled, and what it does to a lead's state
//! for each event, rep action and timer (the Python reference: ``baton_scorer.lifecycle``
//! and the modules it re-exports):
//! [`score`] scores an event into the state, [`stages`] moves the lead between
//! stages and builds the transitions, [`replay`] scores ``baton replay``'s encoded
//! records. The Python methods are in ``bindings::core_methods``.

mod replay;
mod score;
mod stages;

use std::collections::{HashMap, HashSet};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::event::WireTypes;
use crate::hashing::Fx;
use crate::interner::intern;
use crate::matcher::Matcher;
use crate::transition::TransitionMaker;

pub(crate) use replay::parse_ahead_from;
pub(crate) use stages::RepAction;

/// How many signals a transition names (``transitions.TOP_SIGNALS``).
const TOP_SIGNALS: usize = 3;
/// How far back a capped rule's windows are kept (``lifecycle.CAP_HORIZON_SECONDS``).
const CAP_HORIZON_SECONDS: f64 = 90.0 * 86_400.0;

/// The lowercased domain of an email address.
fn email_domain(email: &str) -> Option<String> {
    if email.is_empty() {
        return None;
    }
    email.rsplit_once('@').map(|(_, d)| d.to_lowercase())
}

/// One scoring rule: its points, group, half-life and cap.
struct Rule {
    label: String,
    label_id: u32,
    points: f64,
    group_id: u32,
    half_life: f64,
    cap_points: Option<f64>,
    window_s: Option<f64>,
}

/// ``CompiledRules.plan`` for one event shape (type, name, page category): the rules
/// that always match it, those whose matcher decides, and its express lane.
struct Plan {
    key: (String, Option<String>, Option<String>),
    fixed: Vec<usize>,
    dynamic: Vec<(usize, Matcher)>,
    express: Option<String>,
    express_matches: Vec<Matcher>,
    express_label: String,
}

/// What caused a transition: an event, a rep's action or the recycle timer.
struct Trigger {
    id: String,
    name: Option<String>,
    at: f64,
}

/// One rules version, compiled: what the Python reference reads from ``Rules`` and
/// ``CompiledRules``.
#[pyclass(module = "baton_scorer_native")]
pub struct Core {
    rules: Vec<Rule>,
    by_label: HashMap<String, usize>,
    plans: HashMap<u64, Vec<Plan>, Fx>,
    plan_count: usize,
    // Half-lives by interned id (NaN: not in these rules, so the default ``h0``).
    group_hl: Vec<f64>,
    signal_hl: Vec<f64>,
    h0: f64,
    mql: f64,
    sql: f64,
    hysteresis: f64,
    rebase_after: f64,
    competitors: HashSet<String>,
    qualification_required: bool,
    bant: Vec<String>,
    cold_days: Option<f64>,
    below: Option<f64>,
    pub(crate) version: String,
    sql_bar_g: String,
    recycled_bar_g: String,
    mql_g: String,
    cold_g: String,
    below_g: String,
    py_rules: PyObject,
    compiled: PyObject,
    fit_points: PyObject,
    /// ``bounds.merge_traits``: a lead's traits and an event's, within the caps.
    merge_traits: PyObject,
    pub(crate) maker: TransitionMaker,
    wire_types: WireTypes,
}

/// How many plans are cached before the cache is emptied (event shapes come from
/// the events, so their number has no bound of its own).
const MAX_PLANS: usize = 50_000;

/// ``first_event_at[lead] = at`` unless it holds an earlier time.
pub(crate) fn keep_first_event_at(
    first_event_at: &Bound<'_, PyDict>,
    lead: &Bound<'_, PyAny>,
    at: f64,
) -> PyResult<()> {
    let earlier = match first_event_at.get_item(lead)? {
        None => true,
        Some(first) => at < first.extract::<f64>()?,
    };
    if earlier {
        first_event_at.set_item(lead, at)?;
    }
    Ok(())
}

/// ``None`` or the string.
fn opt_str(value: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if value.is_none() {
        Ok(None)
    } else {
        Ok(Some(value.extract()?))
    }
}

impl Core {
    /// ``spec``: the scalar settings (see ``baton_scorer.native``); ``rules`` and
    /// ``compiled``: the Python rules, for plans, matchers and fit.
    pub(crate) fn from_spec(
        spec: &Bound<'_, PyDict>,
        rules: PyObject,
        compiled: PyObject,
        fit_points: PyObject,
    ) -> PyResult<Core> {
        let item = |key: &str| -> PyResult<Bound<'_, PyAny>> {
            spec.get_item(key)?
                .ok_or_else(|| PyValueError::new_err(format!("core spec has no {key:?}")))
        };
        let mut out = Vec::new();
        let mut by_label = HashMap::new();
        for rule in item("rules")?.try_iter()? {
            let (label, points, group, half_life, cap_points, window_s): (
                String,
                f64,
                String,
                f64,
                Option<f64>,
                Option<f64>,
            ) = rule?.extract()?;
            by_label.insert(label.clone(), out.len());
            let (label_id, group_id) = (intern(&label), intern(&group));
            out.push(Rule {
                label,
                label_id,
                points,
                group_id,
                half_life,
                cap_points,
                window_s,
            });
        }
        let by_id = |pairs: Vec<(u32, f64)>| -> Vec<f64> {
            let size = pairs.iter().map(|p| p.0 as usize + 1).max().unwrap_or(0);
            let mut table = vec![f64::NAN; size];
            for (id, h) in pairs {
                table[id as usize] = h;
            }
            table
        };
        let groups: HashMap<String, f64> = item("group_half_life")?.extract()?;
        let group_hl = by_id(groups.iter().map(|(g, h)| (intern(g), *h)).collect());
        let signal_hl = by_id(out.iter().map(|r| (r.label_id, r.half_life)).collect());
        Ok(Core {
            rules: out,
            by_label,
            plans: HashMap::default(),
            plan_count: 0,
            group_hl,
            signal_hl,
            h0: item("h0")?.extract()?,
            mql: item("mql")?.extract()?,
            sql: item("sql")?.extract()?,
            hysteresis: item("hysteresis")?.extract()?,
            rebase_after: item("rebase_after")?.extract()?,
            competitors: item("competitors")?.extract()?,
            qualification_required: item("qualification_required")?.extract()?,
            bant: item("bant")?.extract()?,
            cold_days: item("cold_days")?.extract()?,
            below: item("below")?.extract()?,
            version: item("version")?.extract()?,
            sql_bar_g: item("sql_bar_g")?.extract()?,
            recycled_bar_g: item("recycled_bar_g")?.extract()?,
            mql_g: item("mql_g")?.extract()?,
            cold_g: item("cold_g")?.extract()?,
            below_g: item("below_g")?.extract()?,
            py_rules: rules,
            compiled,
            fit_points,
            merge_traits: item("merge_traits")?.unbind(),
            maker: TransitionMaker::new(&item("transition_maker")?.downcast_into::<PyDict>()?)?,
            wire_types: {
                let types = item("event_types")?.downcast_into::<PyDict>()?;
                let names = types.keys().extract()?;
                WireTypes {
                    types: types.unbind(),
                    names,
                    from_json: item("from_json")?.unbind(),
                }
            },
        })
    }

    #[inline]
    pub(crate) fn half_life_of_group(&self, g: u32) -> f64 {
        match self.group_hl.get(g as usize) {
            Some(&h) if !h.is_nan() => h,
            _ => self.h0,
        }
    }

    #[inline]
    pub(crate) fn half_life_of_signal(&self, label: u32) -> f64 {
        match self.signal_hl.get(label as usize) {
            Some(&h) if !h.is_nan() => h,
            _ => self.h0,
        }
    }

    fn is_competitor(&self, email: Option<&str>) -> bool {
        match email {
            Some(e) if !e.is_empty() => {
                email_domain(e).is_some_and(|d| self.competitors.contains(&d))
            }
            _ => false,
        }
    }
}

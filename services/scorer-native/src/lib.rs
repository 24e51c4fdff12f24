//! Baton's scoring core, compiled. It computes exactly what `baton_scorer.lifecycle` (the
//! Python reference) computes — the same floating-point operations in the same order, the
//! same transition ids, reasons and rounding — and `tests/scorer/test_native_core.py`
//! checks the two agree on every field. What needs Python stays in Python and is called
//! back: fit points (regular expressions over traits), matchers that look at properties
//! or use ``[`` URL patterns, and building the event-shape plans. `Transition` objects are
//! built here from the classes ``baton_scorer.core`` passes in.
//!
//! Events come as LeadEvent objects, or (``score_records``, for ``baton replay``) as the
//! bytes on ``leads.events``: a record in the exact layout ``LeadEvent.to_bytes`` writes
//! is read here, anything else is left to pydantic. On more than one core those records
//! are read on a second thread while the calling one scores (no Python on that thread).
//!
//! Pure: no I/O, no clock reads.

mod records;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use indexmap::IndexMap;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDateTime, PyDict, PyList, PyString, PyTuple, PyTzInfo};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use smallvec::SmallVec;

/// rustc's FxHash: a few multiply-rotates per word. The keys here (event ids, signal
/// labels, group names) come from the lead's own history, and a lead's maps are small.
#[derive(Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

type Fx = BuildHasherDefault<FxHasher>;
type FxIndexMap<K, V> = IndexMap<K, V, Fx>;

/// Group names and signal labels, interned process-wide: a lead's engagement is a short
/// vector of (id, value) pairs inside its state, not a map of strings elsewhere in memory
/// (with thousands of leads, every pointer followed is a cache miss).
struct Interner {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32, Fx>,
}

fn interner() -> &'static Mutex<Interner> {
    static INTERNER: OnceLock<Mutex<Interner>> = OnceLock::new();
    INTERNER.get_or_init(|| {
        Mutex::new(Interner {
            names: Vec::new(),
            ids: HashMap::default(),
        })
    })
}

fn intern(name: &str) -> u32 {
    let mut table = interner().lock().expect("interner");
    if let Some(&id) = table.ids.get(name) {
        return id;
    }
    let id = table.names.len() as u32;
    let name: Arc<str> = Arc::from(name);
    table.names.push(name.clone());
    table.ids.insert(name, id);
    id
}

fn name_of(id: u32) -> Arc<str> {
    interner().lock().expect("interner").names[id as usize].clone()
}

/// Insertion-ordered (id, value) pairs: the ``dict`` of the Python core, small and inline.
/// Kept inside the state object itself (spilling to the heap only past four entries):
/// with thousands of leads, each pointer followed to another allocation is a cache miss.
type Pairs = SmallVec<[(u32, f64); 4]>;

fn fx_hash(text: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(text.as_bytes());
    hasher.finish()
}

const DEDUP_WINDOW: usize = 500;
const TOP_SIGNALS: usize = 3;
const CAP_HORIZON_SECONDS: f64 = 90.0 * 86_400.0;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    New,
    Mql,
    Sql,
    Recycled,
    Disqualified,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Mql => "mql",
            Stage::Sql => "sql",
            Stage::Recycled => "recycled",
            Stage::Disqualified => "disqualified",
        }
    }

    fn parse(value: &str) -> PyResult<Stage> {
        Ok(match value {
            "new" => Stage::New,
            "mql" => Stage::Mql,
            "sql" => Stage::Sql,
            "recycled" => Stage::Recycled,
            "disqualified" => Stage::Disqualified,
            other => return Err(PyValueError::new_err(format!("unknown stage {other:?}"))),
        })
    }
}

/// Python's ``2.0 ** x``: C ``pow`` itself. A constant base of 2 lets LLVM turn
/// ``powf`` into ``exp2``, which differs from ``pow`` in the last bit for about one
/// argument in a thousand; hiding the base keeps the call to ``pow``.
#[inline]
fn pow2(x: f64) -> f64 {
    std::hint::black_box(2.0f64).powf(x)
}

/// Float order as Python sorts finite floats (``-0.0 == 0.0``), with NaN after every
/// number so the order stays total (a sort given a non-total order may panic).
#[inline]
fn py_float_cmp(a: f64, b: f64) -> std::cmp::Ordering {
    a.partial_cmp(&b)
        .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
}

/// Python's ``round(x, digits)``: the double nearest the decimal that is ``x`` correctly
/// rounded to ``digits`` places, ties to even (``digits`` at most 15).
///
/// Fast path: ``y = x * 10**digits`` is within half an ulp of the exact product, so when
/// ``y``'s fraction is more than ``2·EPSILON·|y|`` (two to four ulps) from one half,
/// rounding ``y`` to an integer ``k`` gives the exact product's rounding, and
/// ``k / 10**digits`` (both exact, one correctly rounded division) is the double nearest
/// ``k``·10^-digits: Python's result. Near a tie, or for large values, the decimal text
/// decides, as Python does.
fn py_round(x: f64, digits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let scale = POW10[digits];
    let y = x * scale;
    if y.abs() < 4_503_599_627_370_496.0 {
        // 2**52: the integer part and the fraction of y are exact
        let fraction = (y - y.trunc()).abs();
        if (fraction - 0.5).abs() > 2.0 * f64::EPSILON * y.abs() {
            return y.round_ties_even() / scale;
        }
    }
    format!("{x:.digits$}").parse().unwrap_or(x)
}

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// ``round(x, digits)`` as the core computes it (for the test that compares it with
/// Python's ``round``).
#[pyfunction]
#[pyo3(name = "py_round")]
fn py_round_py(x: f64, digits: usize) -> PyResult<f64> {
    if digits >= POW10.len() {
        return Err(PyValueError::new_err("digits must be below 16"));
    }
    Ok(py_round(x, digits))
}

/// Python's ``math.isclose`` with its defaults.
fn isclose(a: f64, b: f64) -> bool {
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    let diff = (b - a).abs();
    diff <= 1e-9 * b.abs() || diff <= 1e-9 * a.abs()
}

fn stable_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0x1f]);
        }
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for byte in &digest[..16] {
        out.push(HEX[(byte >> 4) as usize] as char);
        out.push(HEX[(byte & 0xf) as usize] as char);
    }
    out
}

fn email_domain(email: &str) -> Option<String> {
    if email.is_empty() {
        return None;
    }
    email.rsplit_once('@').map(|(_, d)| d.to_lowercase())
}

struct Rule {
    label: String,
    label_id: u32,
    points: f64,
    group_id: u32,
    half_life: f64,
    cap_points: Option<f64>,
    window_s: Option<f64>,
}

struct Plan {
    key: (String, Option<String>, Option<String>),
    fixed: Vec<usize>,
    dynamic: Vec<(usize, Matcher)>,
    express: Option<String>,
    express_matches: Vec<Matcher>,
    express_label: String,
}

struct Trigger {
    id: String,
    name: Option<String>,
    at: f64,
}

type Window = Vec<(f64, Arc<str>, f64)>;

/// One lead's state: the fields of ``lifecycle.LeadState``.
#[pyclass(module = "baton_scorer_native", name = "LeadState")]
pub struct State {
    stage: Stage,
    fit: f64,
    groups: Pairs,
    signals: Pairs,
    origin: Option<f64>,
    capped: FxIndexMap<String, FxIndexMap<String, Window>>,
    traits: Py<PyDict>,
    email: Option<String>,
    seen: SeenIds,
    watermark: Option<f64>,
    last_engaged_at: Option<f64>,
    stage_at: Option<f64>,
    bant: Vec<String>,
    sql_ready: bool,
    due: Option<f64>,
}

impl State {
    fn empty(py: Python<'_>) -> State {
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
        }
    }

    fn remember(&mut self, id: &str) {
        self.seen.push(id);
    }

    fn has_seen(&self, id: &str) -> bool {
        self.seen.contains(id)
    }
}

/// A lead's dedup window: event ids, oldest first. Their text sits end to end in one
/// buffer (no allocation per id, which was a cache miss per event); their hashes are
/// scanned, not probed: most leads' windows hold a few ids. A full one holds
/// ``DEDUP_WINDOW`` (500), scanned per event, and each new id then shifts both lists
/// by one; a window fills only after 500 distinct events of one lead.
#[derive(Default)]
struct SeenIds {
    hashes: SmallVec<[u64; 16]>,
    // Where each id ends in ``text``; the oldest starts at ``start`` (what is before it
    // was forgotten, and is dropped once it is half the buffer).
    ends: SmallVec<[u32; 16]>,
    text: String,
    start: u32,
}

impl SeenIds {
    fn len(&self) -> usize {
        self.hashes.len()
    }

    fn id(&self, i: usize) -> &str {
        let start = if i == 0 { self.start } else { self.ends[i - 1] };
        &self.text[start as usize..self.ends[i] as usize]
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.id(i))
    }

    fn contains(&self, id: &str) -> bool {
        let hash = fx_hash(id);
        self.hashes
            .iter()
            .enumerate()
            .any(|(i, h)| *h == hash && self.id(i) == id)
    }

    fn push(&mut self, id: &str) {
        self.hashes.push(fx_hash(id));
        self.text.push_str(id);
        self.ends
            .push(u32::try_from(self.text.len()).expect("a window's ids fit 4 GiB"));
    }

    /// Prefetch hint: the ends of the window's buffers, where :meth:`push` writes.
    fn prefetch_tail(&self) {
        prefetch_object(self.text.as_ptr().wrapping_add(self.text.len()), 1);
        if self.hashes.spilled() {
            prefetch_object(
                self.hashes.as_ptr().wrapping_add(self.hashes.len()).cast(),
                1,
            );
            prefetch_object(self.ends.as_ptr().wrapping_add(self.ends.len()).cast(), 1);
        }
    }

    fn forget_oldest(&mut self) {
        self.hashes.remove(0);
        self.start = self.ends.remove(0);
        if self.start as usize * 2 > self.text.len() {
            let cut = self.start;
            self.text.drain(..cut as usize);
            self.ends.iter_mut().for_each(|end| *end -= cut);
            self.start = 0;
        }
    }
}

#[pymethods]
impl State {
    #[new]
    fn new(py: Python<'_>) -> State {
        State::empty(py)
    }

    /// The state ``lifecycle.LeadState.to_dict`` writes, with engagement already at one
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
}

impl State {
    fn groups_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for &(k, v) in &self.groups {
            d.set_item(&*name_of(k), v)?;
        }
        Ok(d)
    }
    fn signals_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for &(k, v) in &self.signals {
            d.set_item(&*name_of(k), v)?;
        }
        Ok(d)
    }
}

/// One rules version, compiled: what ``lifecycle`` reads from ``Rules`` and
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
    version: String,
    sql_bar_g: String,
    recycled_bar_g: String,
    mql_g: String,
    cold_g: String,
    below_g: String,
    py_rules: PyObject,
    compiled: PyObject,
    fit_points: PyObject,
    maker: TransitionMaker,
    wire_types: WireTypes,
}

const MAX_PLANS: usize = 50_000;

fn opt_str(value: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if value.is_none() {
        Ok(None)
    } else {
        Ok(Some(value.extract()?))
    }
}

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
            let earlier = match first_event_at.get_item(&lead)? {
                None => true,
                Some(first) => at < first.extract::<f64>()?,
            };
            if earlier {
                first_event_at.set_item(&lead, at)?;
            }
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
    #[allow(clippy::too_many_arguments)]
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
        let mut run = RecordRun {
            out: PyList::empty(py),
            scored: 0,
            duplicates: 0,
            ahead: [0u64; PREFETCH_RING],
        };
        let end = records.len();
        // The first records are read here, then the rest a segment at a time on a second
        // thread (a run that stops early takes references to, and reads ahead, at most one
        // segment); each segment up to the first value that is not bytes, if any.
        let names = &self.wire_types.names.clone(); // a copy: ``self`` changes as it scores
        let (mut from, mut ahead) = (start, false);
        let mut to = end.min(start.saturating_add(parse_ahead_from().load(Ordering::Relaxed)));
        while from < end {
            let segment = bytes_in(records, from, to)?;
            let texts: Vec<&[u8]> = segment.iter().map(|bytes| bytes.as_bytes()).collect();
            run.ahead = [0u64; PREFETCH_RING]; // hints are by position in ``texts``
            let all = texts.is_empty()
                || self.read_and_score(
                    py,
                    states,
                    &mut index,
                    &texts,
                    names,
                    first_event_at,
                    &mut run,
                    ahead,
                )?;
            if !all || segment.len() < to - from {
                break;
            }
            (from, ahead) = (to, true);
            to = end.min(from + PARSE_SEGMENT);
        }
        Ok(run.done(start))
    }

    /// A Transition as scoring builds it, from given values (for the test that checks
    /// it equals the one ``lifecycle`` builds).
    #[allow(clippy::too_many_arguments)]
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

    /// ``lifecycle.expire``: fire the recycle timer if due at ``now`` (in place).
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

    /// ``lifecycle.apply_rep_action``: a rep's ``qualified`` or ``rejected`` (in place).
    #[pyo3(signature = (state, lead_id, action_id, kind, at, reason=None, bant=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn apply_rep_action<'py>(
        &mut self,
        py: Python<'py>,
        state: &Bound<'py, State>,
        lead_id: &str,
        action_id: &str,
        kind: &str,
        at: f64,
        reason: Option<&str>,
        bant: Vec<String>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut st = state.try_borrow_mut()?;
        let out = PyList::empty(py);
        if st.has_seen(action_id) {
            return Ok(out);
        }
        st.remember(action_id);
        let trigger = Trigger {
            id: action_id.to_owned(),
            name: Some(format!("rep {kind}")),
            at,
        };
        if kind == "rejected" && st.stage == Stage::Sql {
            let why = match reason {
                Some(r) if !r.is_empty() => format!("rejected by rep: {r}"),
                _ => "rejected by rep".to_owned(),
            };
            let t = self.do_move(
                py,
                &mut st,
                lead_id,
                Stage::Recycled,
                "rejection",
                why,
                &trigger,
                false,
            )?;
            out.append(t)?;
            return Ok(out);
        }
        if kind == "qualified" {
            let mut fields: Vec<String> = st.bant.clone();
            fields.extend(bant);
            fields.sort();
            fields.dedup();
            st.bant = fields;
            if matches!(st.stage, Stage::New | Stage::Mql | Stage::Recycled)
                && self.missing_bant(&st).is_empty()
            {
                let t = match st.watermark {
                    Some(w) if w != 0.0 => w,
                    _ => at,
                };
                let t = if t >= at { t } else { at };
                let bar = self.sql
                    + if st.stage == Stage::Recycled {
                        self.hysteresis
                    } else {
                        0.0
                    };
                if st.sql_ready || self.score_at_inner(&st, t) >= bar {
                    let why = format!("qualified by rep ({})", st.bant.join(", "));
                    let tr = self.do_move(
                        py,
                        &mut st,
                        lead_id,
                        Stage::Sql,
                        "qualification",
                        why,
                        &trigger,
                        false,
                    )?;
                    out.append(tr)?;
                }
            }
        }
        Ok(out)
    }

    /// ``lifecycle.due_at``: when an SQL lead is recycled if nothing else happens.
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
    /// ``object.__new__`` and ``object.__setattr__`` (see ``direct_slots``).
    #[getter]
    fn builds_directly(&self) -> bool {
        self.maker.transition_slots.is_some() && self.maker.signal_slots.is_some()
    }
}

/// ``d[key] = d.get(key, 0.0) + credit``.
#[inline]
fn add(pairs: &mut Pairs, key: u32, credit: f64) {
    match pairs.iter_mut().find(|p| p.0 == key) {
        Some(p) => p.1 += credit,
        None => pairs.push((key, 0.0 + credit)),
    }
}

impl Core {
    /// ``score_record`` for each of ``texts``, each read here, or with ``ahead`` on a
    /// second thread while this one scores (here too if no thread can be started: a
    /// limit on threads, say); false when the run stopped at one of them.
    #[allow(clippy::too_many_arguments)]
    fn read_and_score<'py>(
        &mut self,
        py: Python<'py>,
        states: &Bound<'py, PyDict>,
        index: &mut LeadIndex,
        texts: &[&[u8]],
        names: &[String],
        first_event_at: &Bound<'py, PyDict>,
        run: &mut RecordRun<'py>,
        ahead: bool,
    ) -> PyResult<bool> {
        if ahead {
            return std::thread::scope(|scope| -> PyResult<bool> {
                // A bounded hand-over: the reader stays at most a few chunks ahead, and stops
                // when this side stops (its next send fails once ``parsed`` is dropped, on any
                // return; the scope then waits for it).
                let (send, parsed) = mpsc::sync_channel::<Vec<Parsed<'_>>>(PARSE_CHUNKS_AHEAD);
                let reader = std::thread::Builder::new()
                    .name("baton-replay-read".to_owned())
                    .spawn_scoped(scope, move || {
                        for chunk in texts.chunks(PARSE_CHUNK) {
                            let chunk = chunk.iter().map(|text| Wire::parse(text, names)).collect();
                            if send.send(chunk).is_err() {
                                return;
                            }
                        }
                    });
                if reader.is_err() {
                    return self.read_and_score(
                        py,
                        states,
                        index,
                        texts,
                        names,
                        first_event_at,
                        run,
                        false,
                    );
                }
                let mut at = 0;
                for chunk in parsed.iter() {
                    for record in &chunk {
                        if !self.score_record(
                            py,
                            states,
                            index,
                            texts,
                            at,
                            record.as_ref(),
                            first_event_at,
                            run,
                        )? {
                            return Ok(false);
                        }
                        at += 1;
                    }
                }
                Ok(true)
            });
        }
        for at in 0..texts.len() {
            let parsed = Wire::parse(texts[at], names);
            let record = parsed.as_ref();
            if !self.score_record(py, states, index, texts, at, record, first_event_at, run)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One record of ``score_records``: ``texts[at]``, read into ``parsed`` (None: not
    /// the exact layout), scored into ``run``; or false, and nothing done: the run stops
    /// at this record.
    #[allow(clippy::too_many_arguments)]
    fn score_record<'py>(
        &mut self,
        py: Python<'py>,
        states: &Bound<'py, PyDict>,
        index: &mut LeadIndex,
        texts: &[&[u8]],
        at: usize,
        parsed: Option<&(Wire<'_>, f64)>,
        first_event_at: &Bound<'py, PyDict>,
        run: &mut RecordRun<'py>,
    ) -> PyResult<bool> {
        // Hints, in stages: a record's memory; then (once it is in cache) its lead's
        // index slot; then (once that is) the lead's state; then (once that is) where
        // the lead's dedup window will write.
        if let Some(text) = texts.get(at + PREFETCH_RECORD_AHEAD) {
            prefetch_object(text.as_ptr(), text.len().min(PREFETCH_RECORD_BYTES));
        }
        let slot_at = at + PREFETCH_SLOT_AHEAD;
        run.ahead[slot_at % PREFETCH_RING] = texts
            .get(slot_at)
            .map_or(0, |text| index.prefetch_slot(text));
        index.prefetch_state(run.ahead[(at + PREFETCH_STATE_AHEAD) % PREFETCH_RING]);
        index.prefetch_window(py, run.ahead[(at + PREFETCH_WINDOW_AHEAD) % PREFETCH_RING]);
        let Some((wire, occurred)) = parsed else {
            return Ok(false);
        };
        let occurred = *occurred;
        if wire.anonymous_id.is_some() {
            return Ok(false);
        }
        let Ok(traits) = wire.traits(py, &self.wire_types) else {
            return Ok(false); // pydantic decides about it (is_plain_object should have said so)
        };
        let ev = Ev {
            event_id: &wire.event_id,
            lead_id: &wire.lead_id,
            name: wire.name.as_deref(),
            type_: &wire.type_,
            page_category: wire.page_category.as_deref(),
            email: wire.email.as_deref(),
            traits,
            object: std::cell::OnceCell::new(),
            wire: Some(wire),
            urls: std::cell::OnceCell::new(),
        };
        let entry = index.entry(py, states, &wire.lead_id)?;
        let mut st = entry.state.bind(py).try_borrow_mut()?;
        run.scored += 1;
        if !self.score_into(py, &mut st, &ev, occurred, &run.out)? {
            run.duplicates += 1;
            return Ok(true);
        }
        // ``first_at`` is never below the dict's value (other paths may lower that):
        // an event at or after it cannot be a lead's first.
        if occurred < entry.first_at {
            let lead = PyString::new(py, &wire.lead_id);
            let earlier = match first_event_at.get_item(&lead)? {
                None => true,
                Some(first) => occurred < first.extract::<f64>()?,
            };
            if earlier {
                first_event_at.set_item(&lead, occurred)?;
            }
            entry.first_at = occurred;
        }
        Ok(true)
    }

    /// Score ``event`` at ``at`` into ``st``; false when it was a duplicate.
    fn score_into<'py>(
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
                let merged = PyDict::new(py);
                merged.update(st.traits.bind(py).as_mapping())?;
                merged.update(traits.as_mapping())?;
                st.traits = merged.unbind();
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
            && st.stage != Stage::Disqualified
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
                Stage::Disqualified,
                "disqualified",
                "competitor email domain".to_owned(),
                &trigger,
                false,
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
                self.decide(py, st, lead_id, &trigger, lane, score, out)?;
            }
        }
        if st.stage == Stage::Sql && (st.due.is_none() || lowered_due) {
            st.due = self.due_at(st);
        }
        Ok(true)
    }

    #[inline]
    fn half_life_of_group(&self, g: u32) -> f64 {
        match self.group_hl.get(g as usize) {
            Some(&h) if !h.is_nan() => h,
            _ => self.h0,
        }
    }

    #[inline]
    fn half_life_of_signal(&self, label: u32) -> f64 {
        match self.signal_hl.get(label as usize) {
            Some(&h) if !h.is_nan() => h,
            _ => self.h0,
        }
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

    fn is_competitor(&self, email: Option<&str>) -> bool {
        match email {
            Some(e) if !e.is_empty() => {
                email_domain(e).is_some_and(|d| self.competitors.contains(&d))
            }
            _ => false,
        }
    }

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

    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        py: Python<'_>,
        st: &mut State,
        lead_id: &str,
        trigger: &Trigger,
        lane: Option<String>,
        score: f64,
        out: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        let stage = st.stage;
        if matches!(stage, Stage::Disqualified | Stage::Sql) {
            return Ok(());
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
                let t =
                    self.do_move(py, st, lead_id, Stage::Sql, kind, reason, trigger, express)?;
                out.append(t)?;
                return Ok(());
            }
            st.sql_ready = true;
            if stage == Stage::New {
                reason.push_str(&format!(
                    "; SQL awaits qualification ({})",
                    missing.join(", ")
                ));
                let t = self.do_move(py, st, lead_id, Stage::Mql, kind, reason, trigger, false)?;
                out.append(t)?;
            }
            return Ok(());
        }
        if stage == Stage::New && score >= self.mql {
            let reason = format!("score {score:.1} reached MQL threshold {}", self.mql_g);
            let t = self.do_move(
                py,
                st,
                lead_id,
                Stage::Mql,
                "threshold",
                reason,
                trigger,
                false,
            )?;
            out.append(t)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn do_move(
        &self,
        py: Python<'_>,
        st: &mut State,
        lead_id: &str,
        to: Stage,
        kind: &str,
        reason: String,
        trigger: &Trigger,
        express: bool,
    ) -> PyResult<PyObject> {
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

    fn engagement_at_inner(&self, st: &State, t: f64) -> f64 {
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

    fn score_at_inner(&self, st: &State, t: f64) -> f64 {
        st.fit + self.engagement_at_inner(st, t)
    }

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

    fn due_at(&self, st: &State) -> Option<f64> {
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

    fn expire_into(
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
            Stage::Recycled,
            "recycle",
            reason,
            &trigger,
            false,
        )?;
        out.append(t)?;
        Ok(())
    }
}

/// Lead id -> its state in a replay's ``states`` dict (the same object), and the
/// lowest first-event time this index wrote. Entries are only ever added to
/// ``states`` (a lead's state object is never replaced), so a state found once
/// stays the right one.
///
/// An open-addressing table (linear probing, at most half full, never shrinks, nothing
/// removed) with one cache line per slot: the id's hash, the id itself when up to 38
/// bytes (lead ids, most emails), and the entry. The first slot a lookup tries follows
/// from the hash alone (nearly always the one: 1.2 probes a lookup at 20,000 leads), so
/// ``score_records`` has it fetched before it is needed.
#[pyclass(module = "baton_scorer_native")]
#[derive(Default)]
pub struct LeadIndex {
    slots: Vec<Slot>,
    len: usize,
}

#[repr(align(64))]
#[derive(Default)]
struct Slot {
    hash: u64, // 0: empty (a lead's hash is odd)
    key: LeadKey,
    entry: Option<IndexEntry>,
}

/// A lead id: in place when it fits, so comparing it reads nothing outside the slot.
enum LeadKey {
    Inline { len: u8, bytes: [u8; 38] },
    Heap(Box<[u8]>),
}

impl Default for LeadKey {
    fn default() -> LeadKey {
        LeadKey::Inline {
            len: 0,
            bytes: [0; 38],
        }
    }
}

impl LeadKey {
    fn new(id: &[u8]) -> LeadKey {
        let mut bytes = [0; 38];
        match bytes.get_mut(..id.len()) {
            Some(inline) => {
                inline.copy_from_slice(id);
                LeadKey::Inline {
                    len: id.len() as u8,
                    bytes,
                }
            }
            None => LeadKey::Heap(id.into()),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            LeadKey::Inline { len, bytes } => &bytes[..*len as usize],
            LeadKey::Heap(bytes) => bytes,
        }
    }
}

struct IndexEntry {
    state: Py<State>,
    first_at: f64,
}

const _: () = assert!(
    std::mem::size_of::<Slot>() == 64,
    "a slot is one cache line"
);

#[pymethods]
impl LeadIndex {
    #[new]
    fn new() -> LeadIndex {
        LeadIndex::default()
    }
}

/// The lead's state in ``states``, added (empty) when it has none.
fn state_in<'py>(
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

/// How many records ahead ``score_records`` has each thing fetched into cache: the
/// record itself, its lead's index slot (the record is in cache by then), the lead's
/// state (found through that slot), and the end of the lead's dedup window and its
/// spilled groups and signals (read from that state). The ring keeps each record's lead
/// hash from the slot stage for the later ones; it must be longer than the slot stage
/// is ahead of the last. Each call starts with an empty ring: its first records get no
/// hints (speed only).
const PREFETCH_RECORD_AHEAD: usize = 16;
const PREFETCH_SLOT_AHEAD: usize = 8;
const PREFETCH_STATE_AHEAD: usize = 4;
const PREFETCH_WINDOW_AHEAD: usize = 2;
const PREFETCH_RING: usize = 16; // above PREFETCH_SLOT_AHEAD
/// A record's first bytes: a whole LeadEvent as ``to_bytes`` writes a typical one (about
/// 420 bytes).
const PREFETCH_RECORD_BYTES: usize = 512;

/// ``score_records`` as it goes: the transitions, the records scored and the duplicates
/// among them, and the prefetch ring.
struct RecordRun<'py> {
    out: Bound<'py, PyList>,
    scored: usize,
    duplicates: usize,
    ahead: [u64; PREFETCH_RING],
}

impl<'py> RecordRun<'py> {
    /// What ``score_records`` returns for a run from ``start``: every record it scored
    /// (duplicates included) was the next one, so it stopped at ``start + scored``.
    fn done(self, start: usize) -> (Bound<'py, PyList>, usize, usize, usize) {
        (self.out, self.scored, self.duplicates, start + self.scored)
    }
}

/// ``records[from..to]`` up to the first that is not bytes, each with a reference of its
/// own (held while it is read, on this thread or the other).
fn bytes_in<'py>(
    records: &Bound<'py, PyList>,
    from: usize,
    to: usize,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let mut held = Vec::with_capacity(to.saturating_sub(from));
    for at in from..to {
        match records.get_item(at)?.downcast_into::<PyBytes>() {
            Ok(bytes) => held.push(bytes),
            Err(_) => break,
        }
    }
    Ok(held)
}

/// A record read by ``Wire::parse``.
type Parsed<'a> = Option<(Wire<'a>, f64)>;

/// Records per hand-over from the reading thread, and how many hand-overs it may be
/// ahead: enough that scoring never waits on it, few enough to stay in cache.
const PARSE_CHUNK: usize = 64;
const PARSE_CHUNKS_AHEAD: usize = 4;
/// At most how many records one thread reads for a run (then the next segment's thread):
/// what a run that stops early can have taken references to and read ahead for nothing.
const PARSE_SEGMENT: usize = 1024;

/// How many of a run's records ``score_records`` reads itself before it hands the rest
/// to a second thread: 64 (a thread costs tens of microseconds; 64 records take over a
/// hundred to score), or all of them on a single core.
fn parse_ahead_from() -> &'static AtomicUsize {
    static FROM: OnceLock<AtomicUsize> = OnceLock::new();
    FROM.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        AtomicUsize::new(if cores > 1 { 64 } else { usize::MAX })
    })
}

/// Set how many of a run's records ``score_records`` reads itself before it hands the
/// rest to a second thread (0: all to the thread; a number past any batch: none), for
/// tests and measurements. Returns the setting it replaces.
#[pyfunction]
fn set_parse_ahead(from_records: usize) -> usize {
    parse_ahead_from().swap(from_records, Ordering::Relaxed)
}

fn lead_hash(id: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(id);
    hasher.finish() | 1
}

/// Where ``LeadEvent.to_bytes`` puts the lead id, read at a glance (for prefetch hints
/// only: a record it misreads wastes the hint, nothing else).
fn lead_id_at_a_glance(record: &[u8]) -> Option<&[u8]> {
    let rest = record.strip_prefix(b"{\"schema\":1,\"event_id\":\"")?;
    let rest = rest[string_stop(rest)?..].strip_prefix(b"\",\"lead_id\":\"")?;
    let end = string_stop(rest)?;
    (rest[end] == b'"').then(|| &rest[..end])
}

impl LeadIndex {
    fn home(&self, hash: u64) -> usize {
        // Fibonacci hashing: the top bits of the hash times 2**64 / phi. FxHash alone
        // leaves ids that differ in a digit or two in runs of neighbouring slots
        // (``lead-1``, ``lead-2``, ...: 24 probes a lookup at 20,000 leads; 1.2 this way).
        let bits = self.slots.len().trailing_zeros();
        (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// The first slot from ``hash``'s home that holds ``hash`` and that ``is_it``
    /// accepts, or None at the first empty slot.
    fn probe(&self, hash: u64, is_it: impl Fn(&Slot) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.home(hash);
        loop {
            let slot = &self.slots[i];
            if slot.hash == 0 {
                return None;
            }
            if slot.hash == hash && is_it(slot) {
                return Some(i);
            }
            i = (i + 1) & (self.slots.len() - 1);
        }
    }

    fn find(&self, id: &[u8], hash: u64) -> Option<usize> {
        self.probe(hash, |slot| slot.key.as_slice() == id)
    }

    fn insert(&mut self, id: &[u8], hash: u64, entry: IndexEntry) -> usize {
        if (self.len + 1) * 2 > self.slots.len() {
            let size = (self.slots.len() * 2).max(64);
            let old = std::mem::replace(
                &mut self.slots,
                (0..size).map(|_| Slot::default()).collect(),
            );
            for slot in old.into_iter().filter(|s| s.hash != 0) {
                let at = self.vacancy(slot.hash);
                self.slots[at] = slot;
            }
        }
        let at = self.vacancy(hash);
        self.slots[at] = Slot {
            hash,
            key: LeadKey::new(id),
            entry: Some(entry),
        };
        self.len += 1;
        at
    }

    fn vacancy(&self, hash: u64) -> usize {
        let mut i = self.home(hash);
        while self.slots[i].hash != 0 {
            i = (i + 1) & (self.slots.len() - 1);
        }
        i
    }

    /// Prefetch hint: the slot of the lead a record names. Returns the lead's hash (0
    /// when the record gives none at a glance) for the later stages.
    fn prefetch_slot(&self, record: &[u8]) -> u64 {
        match (lead_id_at_a_glance(record), self.slots.is_empty()) {
            (Some(id), false) => {
                let hash = lead_hash(id);
                let slot: *const Slot = &self.slots[self.home(hash)];
                prefetch_object(slot.cast(), 64);
                hash
            }
            _ => 0,
        }
    }

    /// The entry of a lead with this hash, if the index has one (for hints only: two
    /// ids with one hash could mix up, which would only waste the hint).
    fn by_hash(&self, hash: u64) -> Option<&IndexEntry> {
        if hash == 0 {
            return None; // the record named no lead at a glance
        }
        let at = self.probe(hash, |_| true)?;
        self.slots[at].entry.as_ref()
    }

    /// Prefetch hint: the state of the lead with this hash, when the index has it.
    /// With thousands of leads a state is rarely still in cache; waiting for it was the
    /// largest single stall per event.
    fn prefetch_state(&self, hash: u64) {
        if let Some(entry) = self.by_hash(hash) {
            prefetch_object(
                entry.state.as_ptr().cast(),
                std::mem::size_of::<State>() + 64,
            );
        }
    }

    /// Prefetch hint: the parts of the state of the lead with this hash that live apart
    /// from it (its state is in cache by now: :meth:`prefetch_state` two records
    /// earlier): where its dedup window writes next, its groups and signals.
    fn prefetch_window(&self, py: Python<'_>, hash: u64) {
        if let Some(entry) = self.by_hash(hash) {
            if let Ok(state) = entry.state.bind(py).try_borrow() {
                state.seen.prefetch_tail();
                // A lead with more groups or signals than fit inline keeps them apart.
                for pairs in [&state.groups, &state.signals] {
                    if pairs.spilled() {
                        prefetch_object(pairs.as_ptr().cast(), std::mem::size_of_val(&pairs[..]));
                    }
                }
            }
        }
    }

    fn entry(
        &mut self,
        py: Python<'_>,
        states: &Bound<'_, PyDict>,
        lead_id: &str,
    ) -> PyResult<&mut IndexEntry> {
        let (id, hash) = (lead_id.as_bytes(), lead_hash(lead_id.as_bytes()));
        let at = match self.find(id, hash) {
            Some(at) => at,
            None => {
                let state = state_in(states, PyString::new(py, lead_id).as_any())?;
                let entry = IndexEntry {
                    state: state.unbind(),
                    first_at: f64::INFINITY,
                };
                self.insert(id, hash, entry)
            }
        };
        Ok(self.slots[at].entry.as_mut().expect("a filled slot"))
    }
}

// -- transitions ----------------------------------------------------------------------

/// ``Transition``'s fields in declaration order; ``core.py`` checks the model has exactly
/// these (and ``Signal`` its two), so a schema change stops the import, not the output.
const TRANSITION_FIELDS: [&str; 19] = [
    "schema_",
    "transition_id",
    "lead_id",
    "from_stage",
    "to_stage",
    "score",
    "fit",
    "engagement",
    "reason",
    "express",
    "trigger_event_id",
    "trigger_event",
    "occurred_at",
    "rules_version",
    "reason_kind",
    "top_signals",
    "emitted_at",
    "email",
    "traits",
];
const STAGES: [Stage; 5] = [
    Stage::New,
    Stage::Mql,
    Stage::Sql,
    Stage::Recycled,
    Stage::Disqualified,
];

/// What a transition is made of, as the core computed it.
struct Built<'a, 'py> {
    transition_id: String,
    lead_id: &'a str,
    from_stage: Stage,
    to_stage: Stage,
    score: f64,
    fit: f64,
    engagement: f64,
    reason: &'a str,
    reason_kind: &'a str,
    express: bool,
    trigger_id: &'a str,
    trigger_name: Option<&'a str>,
    trigger_at: f64,
    rules_version: &'a str,
    signals: &'a [(String, f64)],
    email: Option<&'a str>,
    traits: &'a Bound<'py, PyDict>,
}

/// Builds the ``Transition`` (and ``Signal``) objects ``lifecycle._transition`` builds,
/// without pydantic's per-call machinery: ``object.__new__``, then the instance dict and
/// pydantic's three slots set as ``object.__setattr__`` sets them (pydantic's own
/// ``__setattr__`` would validate). A replay builds tens of thousands: this is several
/// times faster than the same steps in Python. ``test_native_core.py`` checks the result
/// equals the reference's, fields set and field order included.
struct TransitionMaker {
    new: PyObject,
    transition: PyObject,
    signal: PyObject,
    stages: Vec<PyObject>, // by ``STAGES`` position
    kinds: Py<PyDict>,
    schema: PyObject,
    given: PyObject,
    signal_given: PyObject,
    fromtimestamp: PyObject,
    utc: Py<PyTzInfo>,
    utc_direct: bool, // ``utc`` is ``datetime.timezone.utc``: ``utc_datetime`` may build
    // Each class's three slot descriptors, when instances can be made without calls.
    transition_slots: Option<[PyObject; 3]>,
    signal_slots: Option<[PyObject; 3]>,
    keys: Vec<Py<PyString>>,
    // A transition's dict with its keys in field order (values None): copied, then
    // filled, which does not grow a table the way nineteen inserts into an empty one do.
    template: Py<PyDict>,
    signal_keys: [Py<PyString>; 2],
}

impl TransitionMaker {
    fn new(spec: &Bound<'_, PyDict>) -> PyResult<TransitionMaker> {
        let py = spec.py();
        let item = |key: &str| -> PyResult<Bound<'_, PyAny>> {
            spec.get_item(key)?
                .ok_or_else(|| PyValueError::new_err(format!("transition maker has no {key:?}")))
        };
        let fields: Vec<String> = item("fields")?.extract()?;
        if fields != TRANSITION_FIELDS {
            return Err(PyValueError::new_err(format!(
                "Transition's fields are {fields:?}; this build makes {TRANSITION_FIELDS:?}"
            )));
        }
        for class in ["transition", "signal"] {
            // ``untrack`` needs objects of a garbage-collected type (pydantic models are).
            let flags = item(class)?.getattr("__flags__")?.extract::<u64>()?;
            if flags & (1 << 14) == 0 {
                return Err(PyValueError::new_err(format!(
                    "transition maker: {class:?} is not a garbage-collected type"
                )));
            }
        }
        let stages = item("stages")?;
        let template = PyDict::new(py);
        for key in TRANSITION_FIELDS {
            template.set_item(PyString::intern(py, key), py.None())?;
        }
        Ok(TransitionMaker {
            new: item("new")?.unbind(),
            transition: item("transition")?.unbind(),
            signal: item("signal")?.unbind(),
            stages: STAGES
                .iter()
                .map(|s| stages.get_item(s.as_str()).map(Bound::unbind))
                .collect::<PyResult<_>>()?,
            kinds: item("kinds")?.downcast_into::<PyDict>()?.unbind(),
            schema: item("schema")?.unbind(),
            given: item("given")?.unbind(),
            signal_given: item("signal_given")?.unbind(),
            fromtimestamp: item("fromtimestamp")?.unbind(),
            utc: item("utc")?.downcast_into::<PyTzInfo>()?.unbind(),
            utc_direct: is_utc(&item("utc")?)?,
            transition_slots: direct_slots(&item("transition")?)?,
            signal_slots: direct_slots(&item("signal")?)?,
            keys: TRANSITION_FIELDS
                .iter()
                .map(|k| PyString::intern(py, k).unbind())
                .collect(),
            template: template.unbind(),
            signal_keys: [
                PyString::intern(py, "signal").unbind(),
                PyString::intern(py, "points").unbind(),
            ],
        })
    }

    fn utc_datetime<'py>(&self, py: Python<'py>, t: f64) -> PyResult<Bound<'py, PyAny>> {
        utc_datetime(
            t,
            self.utc.bind(py),
            self.utc_direct,
            self.fromtimestamp.bind(py),
        )
    }

    fn stage<'py>(&self, py: Python<'py>, stage: Stage) -> &Bound<'py, PyAny> {
        let at = STAGES
            .iter()
            .position(|s| *s == stage)
            .expect("every stage");
        self.stages[at].bind(py)
    }

    /// A model instance: ``cls`` with ``values`` as its dict and ``given`` (copied) as
    /// the fields set. With ``slots`` (``direct_slots`` of ``cls``), what ``object.__new__``
    /// and the four ``object.__setattr__`` calls do, without the calls: ``tp_alloc``, the
    /// dict set in place, and each slot set as its member descriptor sets it.
    fn instance<'py>(
        &self,
        py: Python<'py>,
        cls: &PyObject,
        slots: Option<&[PyObject; 3]>,
        values: Bound<'py, PyDict>,
        given: &PyObject,
    ) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: ``given`` is a frozenset (``PySet_New`` copies any iterable); a null
        // return is turned into the Python error.
        let fields_set =
            unsafe { Bound::from_owned_ptr_or_err(py, ffi::PySet_New(given.as_ptr()))? };
        let none = py.None().into_bound(py);
        let obj = match slots {
            // SAFETY: ``direct_slots`` checked ``cls`` is a type whose ``tp_new`` is
            // ``object.__new__``'s (which, given no arguments and a type that is not
            // abstract, returns ``tp_alloc(cls, 0)`` with its instance dict initialised;
            // the dict set here replaces that, so the end state is the same), that it has
            // a ``__dict__``, and that each of ``slots`` is a writable object member
            // descriptor of ``cls`` or a base; the descriptors (held here) keep their
            // member definitions alive. Null and -1 returns set the Python error (the
            // object is then dropped; its dealloc copes with unset slots).
            Some(slots) => unsafe {
                let tp = cls.as_ptr().cast::<ffi::PyTypeObject>();
                let alloc = (*tp).tp_alloc.expect("direct_slots checked tp_alloc");
                let obj = Bound::from_owned_ptr_or_err(py, alloc(tp, 0))?;
                if ffi::PyObject_GenericSetDict(obj.as_ptr(), values.as_ptr(), std::ptr::null_mut())
                    < 0
                {
                    return Err(PyErr::fetch(py));
                }
                for (slot, value) in slots.iter().zip([&fields_set, &none, &none]) {
                    let member = member_def(slot.as_ptr());
                    if ffi::PyMember_SetOne(obj.as_ptr().cast(), member, value.as_ptr()) < 0 {
                        return Err(PyErr::fetch(py));
                    }
                }
                obj
            },
            None => {
                let obj = self.new.bind(py).call1((cls,))?;
                generic_setattr(&obj, intern!(py, "__dict__"), values.as_any())?;
                generic_setattr(&obj, intern!(py, "__pydantic_fields_set__"), &fields_set)?;
                generic_setattr(&obj, intern!(py, "__pydantic_extra__"), &none)?;
                generic_setattr(&obj, intern!(py, "__pydantic_private__"), &none)?;
                obj
            }
        };
        untrack(&obj);
        untrack(&fields_set);
        untrack(values.as_any());
        Ok(obj)
    }

    fn build(&self, py: Python<'_>, t: &Built<'_, '_>) -> PyResult<PyObject> {
        let mut signals = Vec::with_capacity(t.signals.len());
        for (label, points) in t.signals {
            let values = PyDict::new(py);
            values.set_item(self.signal_keys[0].bind(py), label)?;
            values.set_item(self.signal_keys[1].bind(py), points)?;
            signals.push(self.instance(
                py,
                &self.signal,
                self.signal_slots.as_ref(),
                values,
                &self.signal_given,
            )?);
        }
        let kind = self
            .kinds
            .bind(py)
            .get_item(t.reason_kind)?
            .ok_or_else(|| {
                PyValueError::new_err(format!("unknown reason kind {:?}", t.reason_kind))
            })?;
        let occurred_at = self.utc_datetime(py, t.trigger_at)?;
        let none = py.None().into_bound(py);
        let values: [Bound<'_, PyAny>; 19] = [
            self.schema.bind(py).clone(),
            t.transition_id.as_str().into_pyobject(py)?.into_any(),
            t.lead_id.into_pyobject(py)?.into_any(),
            self.stage(py, t.from_stage).clone(),
            self.stage(py, t.to_stage).clone(),
            t.score.into_pyobject(py)?.into_any(),
            t.fit.into_pyobject(py)?.into_any(),
            t.engagement.into_pyobject(py)?.into_any(),
            t.reason.into_pyobject(py)?.into_any(),
            t.express.into_pyobject(py)?.to_owned().into_any(),
            t.trigger_id.into_pyobject(py)?.into_any(),
            t.trigger_name.into_pyobject(py)?.into_any(),
            occurred_at,
            t.rules_version.into_pyobject(py)?.into_any(),
            kind,
            {
                let list = PyList::new(py, signals)?.into_any();
                untrack(&list);
                list
            },
            none,
            t.email.into_pyobject(py)?.into_any(),
            t.traits.clone().into_any(),
        ];
        let dict = self.template.bind(py).copy()?;
        for (key, value) in self.keys.iter().zip(values) {
            dict.set_item(key.bind(py), value)?;
        }
        Ok(self
            .instance(
                py,
                &self.transition,
                self.transition_slots.as_ref(),
                dict,
                &self.given,
            )?
            .unbind())
    }
}

/// The member descriptors of ``cls``'s ``__pydantic_fields_set__``, ``__pydantic_extra__``
/// and ``__pydantic_private__`` (pydantic's ``BaseModel.__slots__``), when
/// ``TransitionMaker::instance`` may make its instances without calls: ``cls`` is a type
/// that is not abstract, whose ``tp_new`` is ``object.__new__``'s, with an instance
/// ``__dict__``, and each of the three is a writable object slot. None otherwise (a
/// pydantic that builds models another way): ``instance`` then makes the calls.
fn direct_slots(cls: &Bound<'_, PyAny>) -> PyResult<Option<[PyObject; 3]>> {
    let py = cls.py();
    let Ok(ty) = cls.downcast::<pyo3::types::PyType>() else {
        return Ok(None);
    };
    let tp = ty.as_ptr().cast::<ffi::PyTypeObject>();
    // SAFETY: a live type object; fields read only. ``PyBaseObject_Type`` is static.
    let plain = unsafe {
        // Both are CPython's own (one symbol in libpython), so their addresses compare.
        (*tp).tp_new.map(|f| f as usize)
            == (*std::ptr::addr_of!(ffi::PyBaseObject_Type))
                .tp_new
                .map(|f| f as usize)
            && (*tp).tp_alloc.is_some()
            && (*tp).tp_dictoffset != 0
            && (*tp).tp_flags & ffi::Py_TPFLAGS_IS_ABSTRACT == 0
    };
    if !plain {
        return Ok(None);
    }
    let mut found = Vec::with_capacity(3);
    for name in [
        "__pydantic_fields_set__",
        "__pydantic_extra__",
        "__pydantic_private__",
    ] {
        // What attribute lookup finds first along the MRO (a data descriptor wins).
        let mut descriptor = None;
        for klass in ty.mro().iter() {
            let own = klass.getattr(intern!(py, "__dict__"))?;
            if own.contains(name)? {
                descriptor = Some(own.get_item(name)?);
                break;
            }
        }
        let Some(descriptor) = descriptor else {
            return Ok(None);
        };
        // SAFETY: a live object; its type compared, and only then read as a member
        // descriptor (whose ``d_member`` points into its class's static definitions).
        // Its class must be ``cls`` or a base, as the descriptor's ``__set__`` checks:
        // the member's offset is into instances of that class.
        let writable_object = unsafe {
            std::ptr::eq(
                ffi::Py_TYPE(descriptor.as_ptr()),
                std::ptr::addr_of!(ffi::PyMemberDescr_Type),
            ) && {
                let owner = (*descriptor.as_ptr().cast::<ffi::PyDescrObject>()).d_type;
                ffi::PyType_IsSubtype(tp, owner) != 0
            } && {
                let member = &*member_def(descriptor.as_ptr());
                member.type_code == ffi::Py_T_OBJECT_EX && member.flags & ffi::Py_READONLY == 0
            }
        };
        if !writable_object {
            return Ok(None);
        }
        found.push(descriptor.unbind());
    }
    Ok(found.try_into().ok())
}

/// A member descriptor's definition (pyo3-ffi declares ``d_member`` with the wrong
/// pointee type; it is CPython's ``PyMemberDef *``).
///
/// # Safety
/// ``descriptor`` must be a member descriptor (its type ``PyMemberDescr_Type``).
unsafe fn member_def(descriptor: *mut ffi::PyObject) -> *mut ffi::PyMemberDef {
    (*descriptor.cast::<ffi::PyMemberDescrObject>())
        .d_member
        .cast::<ffi::PyMemberDef>()
}

/// ``datetime.fromtimestamp(t, UTC)``'s fields, as CPython computes them: whole seconds
/// and microseconds rounded half to even (``_PyTime_ObjectToTimeval``), then ``gmtime``;
/// None for a time that is not finite or outside years 1-9999 (those go to Python).
fn utc_fields(t: f64) -> Option<(i32, u8, u8, u8, u8, u8, u32)> {
    if !t.is_finite() {
        return None;
    }
    let mut whole = t.trunc();
    let mut frac = (t - whole) * 1e6; // ``modf``'s fraction: exact
    let rounded = frac.round();
    frac = if (frac - rounded).abs() == 0.5 {
        2.0 * (frac / 2.0).round()
    } else {
        rounded
    };
    if frac >= 1e6 {
        frac -= 1e6;
        whole += 1.0;
    } else if frac < 0.0 {
        frac += 1e6;
        whole -= 1.0;
    }
    // 0001-01-01T00:00:00 to 9999-12-31T23:59:59.
    if !(-62_135_596_800.0..=253_402_300_799.0).contains(&whole) {
        return None;
    }
    let secs = whole as i64;
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to the civil date (H. Hinnant's ``civil_from_days``).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some((
        year as i32,
        month as u8,
        day as u8,
        (of_day / 3_600) as u8,
        (of_day % 3_600 / 60) as u8,
        (of_day % 60) as u8,
        frac as u32,
    ))
}

/// Whether ``tz`` is ``datetime.timezone.utc`` (whose ``fromutc`` changes nothing).
fn is_utc(tz: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = tz.py();
    Ok(tz.is(&py.import("datetime")?.getattr("timezone")?.getattr("utc")?))
}

/// ``fromtimestamp(t, utc)``: built from ``utc_fields`` when ``direct`` (``utc`` is
/// ``datetime.timezone.utc``) and it has them, else the call, which raises what it raises
/// (a year outside 1-9999, a time that is not finite).
fn utc_datetime<'py>(
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

/// ``datetime.fromtimestamp(t, tz)`` as the core builds a transition's ``occurred_at``
/// with ``tz`` as its zone, for the test that checks it equals Python's.
#[pyfunction]
fn utc_from_timestamp<'py>(
    t: f64,
    tz: &Bound<'py, PyTzInfo>,
    fromtimestamp: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    utc_datetime(t, tz, is_utc(tz.as_any())?, fromtimestamp)
}

/// Asks the CPU to fetch ``bytes`` bytes from ``start`` into cache (a hint: no effect on
/// results; nothing on targets without a prefetch instruction here).
#[inline]
fn prefetch_object(start: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    for offset in (0..bytes).step_by(64) {
        // SAFETY: a prefetch never faults and reads nothing the program sees; the
        // address is inside (or just past) one live object.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                start.wrapping_add(offset).cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, bytes);
}

/// Takes an object this module built out of the cyclic garbage collector's view. A
/// transition is acyclic by construction: its objects hold strings, numbers, enum
/// members, a datetime, its signals and the lead's traits dict (which stays tracked).
/// Untracked, the tens of thousands a replay keeps are not rescanned by every collection
/// (that was ~10% of a replay's time); reference counting still frees them. An object
/// that is untracked only hides references from the collector, which then treats what
/// they point to as referenced from outside: a cycle someone later builds through a
/// transition would leak, nothing is ever freed early. ``TransitionMaker::new`` checks
/// the classes are garbage-collected types (untracking any other object corrupts memory).
fn untrack(obj: &Bound<'_, PyAny>) {
    // SAFETY: a live object; untracking an untracked object is a no-op.
    unsafe { ffi::PyObject_GC_UnTrack(obj.as_ptr().cast()) }
}

/// ``object.__setattr__(obj, name, value)``: the generic attribute set, past any
/// ``__setattr__`` the class defines.
fn generic_setattr(
    obj: &Bound<'_, PyAny>,
    name: &Bound<'_, PyString>,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    // SAFETY: three live objects, borrowed for the call; -1 sets the Python error.
    let rc = unsafe { ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr()) };
    if rc < 0 {
        Err(PyErr::fetch(obj.py()))
    } else {
        Ok(())
    }
}

// -- events: as LeadEvent objects, or as their encoded bytes --------------------------

/// What scoring reads from an event. ``object`` is what Python callbacks (plan building,
/// matchers that look at URLs or properties) are given: the LeadEvent itself, or for an
/// encoded event a :class:`WireEvent` made when first needed.
struct Ev<'a, 'py> {
    event_id: &'a str,
    lead_id: &'a str,
    name: Option<&'a str>,
    type_: &'a str,
    page_category: Option<&'a str>,
    email: Option<&'a str>,
    traits: Option<Bound<'py, PyDict>>, // None when the event has none
    object: std::cell::OnceCell<Bound<'py, PyAny>>,
    wire: Option<&'a Wire<'a>>,
    urls: std::cell::OnceCell<Option<Vec<String>>>,
}

impl<'py> Ev<'_, 'py> {
    /// ``rules._urls(event)``: the page URL and path from ``properties`` and from
    /// ``context.page``, the strings only; None when only Python can read them.
    fn urls(&self, py: Python<'py>, types: &WireTypes) -> PyResult<Option<&[String]>> {
        if self.urls.get().is_none() {
            let found = match self.wire {
                Some(wire) => wire_urls(wire),
                None => self.py_urls(py, types)?,
            };
            let _ = self.urls.set(found);
        }
        Ok(self.urls.get().expect("set above").as_deref())
    }

    fn py_urls(&self, py: Python<'py>, types: &WireTypes) -> PyResult<Option<Vec<String>>> {
        let event = self.object(py, types)?;
        let mut out = Vec::new();
        let mut take = |holder: &Bound<'py, PyDict>| -> PyResult<bool> {
            for key in [intern!(py, "url"), intern!(py, "path")] {
                if let Some(value) = holder.get_item(key)? {
                    if let Ok(text) = value.downcast::<PyString>() {
                        let Ok(text) = text.to_str() else {
                            return Ok(false); // not UTF-8 (a lone surrogate): Python decides
                        };
                        out.push(text.to_owned());
                    }
                }
            }
            Ok(true)
        };
        let props = event.getattr(intern!(py, "properties"))?;
        let Ok(props) = props.downcast::<PyDict>() else {
            return Ok(None);
        };
        if !props.is_empty() && !take(props)? {
            return Ok(None);
        }
        let context = event.getattr(intern!(py, "context"))?;
        if let Ok(context) = context.downcast::<PyDict>() {
            if let Some(page) = context.get_item(intern!(py, "page"))? {
                if let Ok(page) = page.downcast::<PyDict>() {
                    if !take(page)? {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(Some(out))
    }
    fn object(&self, py: Python<'py>, types: &WireTypes) -> PyResult<&Bound<'py, PyAny>> {
        if self.object.get().is_none() {
            let wire = self
                .wire
                .expect("an Ev without its object is an encoded event");
            let view = WireEvent {
                type_: types.event_type(py, &wire.type_)?,
                name: wire.name.as_deref().map(str::to_owned),
                page_category: wire.page_category.as_deref().map(str::to_owned),
                properties: types.parse_json(py, wire.properties)?.unbind(),
                context: types.parse_json(py, wire.context)?.unbind(),
            };
            let _ = self.object.set(Bound::new(py, view)?.into_any());
        }
        Ok(self.object.get().expect("set above"))
    }
}

/// A LeadEvent's fields, held while an :struct:`Ev` borrows their text.
struct PyFields<'py> {
    event_id: Bound<'py, PyAny>,
    lead_id: Bound<'py, PyAny>,
    name: Bound<'py, PyAny>,
    type_: Bound<'py, PyAny>,
    page_category: Bound<'py, PyAny>,
    email: Bound<'py, PyAny>,
    traits: Bound<'py, PyAny>,
}

fn opt_text<'a>(value: &'a Bound<'_, PyAny>) -> PyResult<Option<&'a str>> {
    if value.is_none() {
        Ok(None)
    } else {
        Ok(Some(value.downcast::<PyString>()?.to_str()?))
    }
}

impl<'py> PyFields<'py> {
    fn of(py: Python<'py>, event: &Bound<'py, PyAny>) -> PyResult<PyFields<'py>> {
        Ok(PyFields {
            event_id: event.getattr(intern!(py, "event_id"))?,
            lead_id: event.getattr(intern!(py, "lead_id"))?,
            name: event.getattr(intern!(py, "name"))?,
            type_: event.getattr(intern!(py, "type"))?,
            page_category: event.getattr(intern!(py, "page_category"))?,
            email: event.getattr(intern!(py, "email"))?,
            traits: event.getattr(intern!(py, "traits"))?,
        })
    }

    fn view<'a>(&'a self, event: &Bound<'py, PyAny>) -> PyResult<Ev<'a, 'py>> {
        let traits = self.traits.downcast::<PyDict>()?;
        let object = std::cell::OnceCell::new();
        let _ = object.set(event.clone());
        Ok(Ev {
            event_id: self.event_id.downcast::<PyString>()?.to_str()?,
            lead_id: self.lead_id.downcast::<PyString>()?.to_str()?,
            name: opt_text(&self.name)?,
            type_: self.type_.downcast::<PyString>()?.to_str()?,
            page_category: opt_text(&self.page_category)?,
            email: opt_text(&self.email)?,
            traits: (!traits.is_empty()).then(|| traits.clone()),
            object,
            wire: None,
            urls: std::cell::OnceCell::new(),
        })
    }
}

/// The event types (value -> ``EventType`` member) and pydantic-core's ``from_json``,
/// which turns a JSON object into exactly the dict pydantic gives a ``dict[str, Any]``.
struct WireTypes {
    types: Py<PyDict>,
    names: Vec<String>,
    from_json: PyObject,
}

impl WireTypes {
    fn event_type<'py>(&self, py: Python<'py>, value: &str) -> PyResult<PyObject> {
        self.types
            .bind(py)
            .get_item(value)?
            .map(Bound::unbind)
            .ok_or_else(|| PyValueError::new_err(format!("unknown event type {value:?}")))
    }

    fn parse_json<'py>(&self, py: Python<'py>, json: &str) -> PyResult<Bound<'py, PyAny>> {
        if json == "{}" {
            return Ok(PyDict::new(py).into_any()); // what from_json gives, without the call
        }
        self.from_json
            .bind(py)
            .call1((PyBytes::new(py, json.as_bytes()),))
    }
}

/// What matchers and plan building see of an encoded event: the LeadEvent attributes they
/// read (``type``, ``name``, ``page_category``, ``properties``, ``context``).
#[pyclass(module = "baton_scorer_native", frozen)]
struct WireEvent {
    #[pyo3(get, name = "type")]
    type_: PyObject,
    #[pyo3(get)]
    name: Option<String>,
    #[pyo3(get)]
    page_category: Option<String>,
    #[pyo3(get)]
    properties: PyObject,
    #[pyo3(get)]
    context: PyObject,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // parsed to validate it; matchers read the page through ``context``
struct WirePage<'a> {
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    path: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    referrer: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    title: Option<Cow<'a, str>>,
}

/// A LeadEvent exactly as ``to_bytes`` writes it: every field present, no others. Any
/// other layout fails to parse here and is left to pydantic, which decides about it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // every field is parsed (that is the validation); not all are read
struct Wire<'a> {
    schema: u8,
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    lead_id: Cow<'a, str>,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    anonymous_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    type_: Cow<'a, str>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    occurred_at: Cow<'a, str>,
    #[serde(borrow)]
    received_at: Cow<'a, str>,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(borrow)]
    page_category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    page: Option<WirePage<'a>>,
    #[serde(borrow)]
    campaign: HashMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ip: Option<Cow<'a, str>>,
    #[serde(borrow)]
    group_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    previous_id: Option<Cow<'a, str>>,
    possible_duplicate: bool,
    #[serde(borrow, deserialize_with = "raw_text")]
    properties: &'a str,
    #[serde(borrow, deserialize_with = "raw_text")]
    traits: &'a str,
    #[serde(borrow, deserialize_with = "raw_text")]
    context: &'a str,
}

/// A free-form value's JSON text, syntax checked by serde.
fn raw_text<'de, D: serde::Deserializer<'de>>(value: D) -> Result<&'de str, D::Error> {
    <&'de RawValue>::deserialize(value).map(RawValue::get)
}

/// A free-form object (``properties``, ``traits``, ``context``) that pydantic reads as
/// serde does. serde only checks a raw value's syntax; pydantic (jiter) also refuses lone
/// surrogate escapes, control characters in strings, integers of more than 4,300 digits
/// and deep nesting. Anything near those (any surrogate escape, a number run of over
/// 1,000 characters or with an exponent, nesting past 64) is left to pydantic.
fn is_plain_object(raw: &str) -> bool {
    let text = raw.as_bytes();
    if text == b"{}" {
        return true;
    }
    if text.first() != Some(&b'{') {
        return false;
    }
    let (mut depth, mut i) = (0usize, 0usize);
    while i < text.len() {
        match text[i] {
            b'"' => {
                i += 1;
                while text[i] != b'"' {
                    match text[i] {
                        b'\\' => {
                            if text[i + 1] == b'u' && matches!(text[i + 2], b'd' | b'D') {
                                return false; // a surrogate half, paired or not
                            }
                            i += 2;
                        }
                        0..=0x1f => return false,
                        _ => i += 1,
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > 64 {
                    return false;
                }
            }
            b'}' | b']' => depth -= 1,
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i + 1 < text.len()
                    && matches!(text[i + 1], b'0'..=b'9' | b'.' | b'-' | b'+' | b'e' | b'E')
                {
                    i += 1;
                    if matches!(text[i], b'e' | b'E') {
                        return false;
                    }
                }
                if i - start > 1_000 {
                    return false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    true
}

/// A reader of the one layout ``to_bytes`` writes: every key in declaration order, no
/// whitespace, no escapes. It reads that layout without serde's per-key dispatch and
/// gives up (None) on anything else — other key orders, spacing, an escape or a control
/// character in any string, an exponent — which then goes to serde, so what it accepts
/// is a subset of what serde accepts, read to the same values.
struct Layout<'a> {
    text: &'a str,
    at: usize,
}

/// How deep free-form values may nest here (pydantic's limit is deeper; serde's too).
const LAYOUT_MAX_DEPTH: usize = 64;

/// Where the first ``"``, ``\\`` or control character (below 0x20) is, eight bytes at a
/// time: a byte's high bit in ``hits`` is set where it equals one (or is below 0x20),
/// exactly so at the lowest such byte (a borrow only carries upward, from a hit).
fn string_stop(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_at = |x: u64| x.wrapping_sub(ONES) & !x;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let hits = (zero_at(word ^ (ONES * u64::from(b'"')))
            | zero_at(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word))
            & HIGHS;
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = bytes[at..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    Some(at + rest)
}

impl<'a> Layout<'a> {
    fn read(text: &'a str) -> Option<Wire<'a>> {
        let mut r = Layout { text, at: 0 };
        r.expect(b"{\"schema\":1,\"event_id\":")?;
        let event_id = r.string()?;
        r.expect(b",\"lead_id\":")?;
        let lead_id = r.string()?;
        r.expect(b",\"user_id\":")?;
        let user_id = r.opt_string()?;
        r.expect(b",\"anonymous_id\":")?;
        let anonymous_id = r.opt_string()?;
        r.expect(b",\"email\":")?;
        let email = r.opt_string()?;
        r.expect(b",\"type\":")?;
        let type_ = r.string()?;
        r.expect(b",\"name\":")?;
        let name = r.opt_string()?;
        r.expect(b",\"occurred_at\":")?;
        let occurred_at = r.string()?;
        r.expect(b",\"received_at\":")?;
        let received_at = r.string()?;
        r.expect(b",\"source\":")?;
        let source = r.string()?;
        r.expect(b",\"page_category\":")?;
        let page_category = r.opt_string()?;
        r.expect(b",\"page\":")?;
        let page = r.page()?;
        r.expect(b",\"campaign\":")?;
        let campaign = r.campaign()?;
        r.expect(b",\"user_agent\":")?;
        let user_agent = r.opt_string()?;
        r.expect(b",\"ip\":")?;
        let ip = r.opt_string()?;
        r.expect(b",\"group_id\":")?;
        let group_id = r.opt_string()?;
        r.expect(b",\"previous_id\":")?;
        let previous_id = r.opt_string()?;
        r.expect(b",\"possible_duplicate\":")?;
        let possible_duplicate = if r.expect(b"false").is_some() {
            false
        } else {
            r.expect(b"true")?;
            true
        };
        r.expect(b",\"properties\":")?;
        let properties = r.object()?;
        r.expect(b",\"traits\":")?;
        let traits = r.object()?;
        r.expect(b",\"context\":")?;
        let context = r.object()?;
        r.expect(b"}")?;
        if r.at != text.len() {
            return None;
        }
        let text = |s: &'a str| Cow::Borrowed(s);
        Some(Wire {
            schema: 1,
            event_id: text(event_id),
            lead_id: text(lead_id),
            user_id: user_id.map(text),
            anonymous_id: anonymous_id.map(text),
            email: email.map(text),
            type_: text(type_),
            name: name.map(text),
            occurred_at: text(occurred_at),
            received_at: text(received_at),
            source: text(source),
            page_category: page_category.map(text),
            page,
            campaign,
            user_agent: user_agent.map(text),
            ip: ip.map(text),
            group_id: group_id.map(text),
            previous_id: previous_id.map(text),
            possible_duplicate,
            properties,
            traits,
            context,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn expect(&mut self, literal: &[u8]) -> Option<()> {
        let rest = self.text.as_bytes().get(self.at..)?;
        rest.starts_with(literal).then(|| self.at += literal.len())
    }

    /// A string without escapes or control characters (serde refuses raw control
    /// characters; an escape needs decoding): its text, between the quotes.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b"\"")?;
        let bytes = self.text.as_bytes();
        let start = self.at;
        let end = start + string_stop(&bytes[start..])?;
        if bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end) // quotes are ASCII: always on a character boundary
    }

    fn opt_string(&mut self) -> Option<Option<&'a str>> {
        if self.expect(b"null").is_some() {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// ``null`` or the page with its four keys in order.
    fn page(&mut self) -> Option<Option<WirePage<'a>>> {
        if self.expect(b"null").is_some() {
            return Some(None);
        }
        self.expect(b"{\"url\":")?;
        let url = self.opt_string()?;
        self.expect(b",\"path\":")?;
        let path = self.opt_string()?;
        self.expect(b",\"referrer\":")?;
        let referrer = self.opt_string()?;
        self.expect(b",\"title\":")?;
        let title = self.opt_string()?;
        self.expect(b"}")?;
        Some(Some(WirePage {
            url: url.map(Cow::Borrowed),
            path: path.map(Cow::Borrowed),
            referrer: referrer.map(Cow::Borrowed),
            title: title.map(Cow::Borrowed),
        }))
    }

    /// String to string; a repeated key keeps its last value, as serde's map does.
    fn campaign(&mut self) -> Option<HashMap<Cow<'a, str>, Cow<'a, str>>> {
        let mut out = HashMap::new();
        self.expect(b"{")?;
        if self.expect(b"}").is_some() {
            return Some(out);
        }
        loop {
            let key = self.string()?;
            self.expect(b":")?;
            out.insert(Cow::Borrowed(key), Cow::Borrowed(self.string()?));
            if self.expect(b"}").is_some() {
                return Some(out);
            }
            self.expect(b",")?;
        }
    }

    /// A free-form object's JSON text, its syntax checked.
    fn object(&mut self) -> Option<&'a str> {
        let start = self.at;
        if self.peek()? != b'{' {
            return None;
        }
        self.value(0)?;
        self.text.get(start..self.at)
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' if depth >= LAYOUT_MAX_DEPTH => None,
            b'{' => {
                self.at += 1;
                if self.expect(b"}").is_some() {
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.expect(b":")?;
                    self.value(depth + 1)?;
                    if self.expect(b"}").is_some() {
                        return Some(());
                    }
                    self.expect(b",")?;
                }
            }
            b'[' => {
                self.at += 1;
                if self.expect(b"]").is_some() {
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    if self.expect(b"]").is_some() {
                        return Some(());
                    }
                    self.expect(b",")?;
                }
            }
            b't' => self.expect(b"true"),
            b'f' => self.expect(b"false"),
            b'n' => self.expect(b"null"),
            _ => self.number(),
        }
    }

    /// ``-?(0|[1-9][0-9]*)(.[0-9]+)?``; exponents are left to serde.
    fn number(&mut self) -> Option<()> {
        let _ = self.expect(b"-");
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.expect(b".").is_some() {
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        if matches!(self.peek()?, b'e' | b'E') {
            return None;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
    }
}

impl<'a> Wire<'a> {
    /// The event and its ``occurred_at`` (epoch seconds), or None: not this layout.
    fn parse(bytes: &'a [u8], types: &[String]) -> Option<(Self, f64)> {
        // One UTF-8 check of the whole record (fast over ASCII), then a parser that does
        // not check each string again: a record with invalid UTF-8 anywhere fails here,
        // as it fails serde (and pydantic) in a string or as a syntax error elsewhere.
        let text = std::str::from_utf8(bytes).ok()?;
        let wire = match Layout::read(text) {
            Some(wire) => wire,
            None => serde_json::from_str::<Wire<'a>>(text).ok()?,
        };
        if wire.schema != 1
            || !is_plain_object(wire.properties)
            || !is_plain_object(wire.traits)
            || !is_plain_object(wire.context)
            || !types.iter().any(|name| *name == wire.type_)
            || epoch_micros(&wire.received_at).is_none()
        {
            return None;
        }
        let micros = epoch_micros(&wire.occurred_at)?;
        // What ``datetime.timestamp()`` computes: whole microseconds / 10**6, correctly
        // rounded (exact here: the count fits in a double's 53 bits, checked above).
        Some((wire, micros as f64 / 1e6))
    }

    fn traits<'py>(
        &self,
        py: Python<'py>,
        types: &WireTypes,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        if self.traits == "{}" {
            return Ok(None);
        }
        let traits = types
            .parse_json(py, self.traits)?
            .downcast_into::<PyDict>()?;
        Ok((!traits.is_empty()).then_some(traits))
    }
}

/// ``rules._urls`` of an encoded event, read from its JSON (a repeated key: the last one,
/// as pydantic reads it); None when a value is not plain to read here.
fn wire_urls(wire: &Wire<'_>) -> Option<Vec<String>> {
    type Object<'a> = HashMap<Cow<'a, str>, &'a RawValue>;
    fn take(object: &Object<'_>, out: &mut Vec<String>) -> Option<()> {
        for key in ["url", "path"] {
            if let Some(value) = object.get(key) {
                if value.get().starts_with('"') {
                    out.push(
                        serde_json::from_str::<Cow<'_, str>>(value.get())
                            .ok()?
                            .into_owned(),
                    );
                }
            }
        }
        Some(())
    }
    let mut out = Vec::new();
    if wire.properties != "{}" {
        take(
            &serde_json::from_str::<Object<'_>>(wire.properties).ok()?,
            &mut out,
        )?;
    }
    if wire.context != "{}" {
        let context = serde_json::from_str::<Object<'_>>(wire.context).ok()?;
        if let Some(page) = context.get("page") {
            if page.get().starts_with('{') {
                take(
                    &serde_json::from_str::<Object<'_>>(page.get()).ok()?,
                    &mut out,
                )?;
            }
        }
    }
    Some(out)
}

/// A rule's match that looks past the event's shape: a URL glob the core checks itself
/// (``fnmatch.fnmatchcase`` with ``*`` and ``?``), or a Python ``Match`` it calls.
enum Matcher {
    Url { pattern: Vec<char>, py: PyObject },
    Py(PyObject),
}

impl Matcher {
    fn of(m: &Bound<'_, PyAny>) -> PyResult<Matcher> {
        let py = m.py();
        let url = m.getattr(intern!(py, "url"))?;
        let properties = m.getattr(intern!(py, "properties"))?;
        if let (Ok(url), Ok(properties)) =
            (url.downcast::<PyString>(), properties.downcast::<PyDict>())
        {
            if let Ok(url) = url.to_str() {
                if properties.is_empty() && !url.contains('[') {
                    return Ok(Matcher::Url {
                        pattern: url.chars().collect(),
                        py: m.clone().unbind(),
                    });
                }
            }
        }
        Ok(Matcher::Py(m.clone().unbind()))
    }

    fn matches<'py>(&self, py: Python<'py>, ev: &Ev<'_, 'py>, types: &WireTypes) -> PyResult<bool> {
        let m = match self {
            Matcher::Url { pattern, py: m } => match ev.urls(py, types)? {
                Some(urls) => return Ok(urls.iter().any(|u| glob_match(pattern, u))),
                None => m,
            },
            Matcher::Py(m) => m,
        };
        m.bind(py)
            .call_method1(intern!(py, "matches"), (ev.object(py, types)?,))?
            .is_truthy()
    }
}

/// ``fnmatch.fnmatchcase(text, pattern)`` for a pattern without ``[``: ``*`` is any
/// run of characters (newlines too), ``?`` any one character, the rest literal.
fn glob_match(pattern: &[char], text: &str) -> bool {
    let text: SmallVec<[char; 128]> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut resume: Option<(usize, usize)> = None; // after the last '*': (pattern, text)
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || (pattern[p] != '*' && pattern[p] == text[t]))
        {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            resume = Some((p + 1, t));
            p += 1;
        } else if let Some((rp, rt)) = resume {
            p = rp;
            t = rt + 1;
            resume = Some((rp, rt + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Whether the core's own reader of the exact layout reads ``record`` (else serde reads
/// it, or pydantic decides), for tests: records as ``to_bytes`` writes them must take it.
#[pyfunction]
fn reads_exact_layout(record: &[u8]) -> bool {
    std::str::from_utf8(record).is_ok_and(|text| Layout::read(text).is_some())
}

/// ``fnmatch.fnmatchcase`` as the core matches URLs (patterns without ``[``), for tests.
#[pyfunction]
fn url_glob_match(pattern: &str, text: &str) -> PyResult<bool> {
    if pattern.contains('[') {
        return Err(PyValueError::new_err(
            "patterns with [ are matched by Python",
        ));
    }
    Ok(glob_match(&pattern.chars().collect::<Vec<_>>(), text))
}

/// Microseconds since the epoch of an ISO 8601 time in the layout pydantic writes
/// (``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)``), or None for anything else.
fn epoch_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |from: usize, n: usize| -> Option<i64> {
        let part = b.get(from..from + n)?;
        let mut value = 0i64;
        for &c in part {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            value = value * 10 + i64::from(digit);
        }
        Some(value)
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    // The date's and time's fourteen digits, checked together (no branch per digit).
    const AT: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    let mut d = [0i64; 14];
    let mut not_digit = false;
    for (k, &at) in AT.iter().enumerate() {
        let digit = b[at].wrapping_sub(b'0');
        not_digit |= digit > 9;
        d[k] = i64::from(digit);
    }
    if not_digit {
        return None;
    }
    let year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3];
    let (month, day) = (d[4] * 10 + d[5], d[6] * 10 + d[7]);
    let (hour, minute, second) = (d[8] * 10 + d[9], d[10] * 10 + d[11], d[12] * 10 + d[13]);
    let mut i = 19;
    let mut micros = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let n = end - start;
        if n == 0 || n > 6 {
            return None;
        }
        micros = digits(start, n)? * [1, 10, 100, 1_000, 10_000, 100_000][6 - n];
        i = end;
    }
    let offset = match &b[i..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let month_days = match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if year < 1
        || !(1..=12).contains(&month)
        || day < 1
        || day > month_days
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // Days from 1970-01-01 (proleptic Gregorian), as datetime computes them.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset * 60;
    let total = seconds * 1_000_000 + micros;
    (total.abs() < (1i64 << 53)).then_some(total)
}

/// ``event.occurred_at.timestamp()``.
fn timestamp(py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<f64> {
    event
        .getattr(intern!(py, "occurred_at"))?
        .call_method0(intern!(py, "timestamp"))?
        .extract()
}

/// ``decay.Engagement.at``.
#[inline]
fn at_time(value: f64, reference: f64, t: f64, h: f64) -> f64 {
    value * pow2(-(t - reference) / h)
}

/// ``decay.sum_falls_below_at`` for parts ``(value, reference time, half-life)``.
fn sum_falls_below_at(parts: &[(f64, f64, f64)], level: f64) -> Option<f64> {
    // Merge parts with the same half-life (insertion order kept, like a dict).
    let mut by_h: Vec<(f64, f64, f64)> = Vec::new(); // (h, value, ref)
    for &(value, reference, h) in parts {
        match by_h.iter_mut().find(|(hh, _, _)| *hh == h) {
            None => by_h.push((h, value, reference)),
            Some(prev) => {
                let r = if prev.2 >= reference {
                    prev.2
                } else {
                    reference
                };
                let merged = at_time(prev.1, prev.2, r, h) + at_time(value, reference, r, h);
                *prev = (h, merged, r);
            }
        }
    }
    if by_h.is_empty() {
        return None;
    }
    if by_h.len() == 1 {
        let (h, value, reference) = by_h[0];
        return falls_below_at(value, reference, level, h);
    }
    if level <= 0.0 {
        return None;
    }
    let start = by_h
        .iter()
        .map(|p| p.2)
        .fold(f64::NEG_INFINITY, |a, b| if b > a { b } else { a });
    let total = |t: f64| -> f64 {
        let mut sum = 0.0;
        for &(h, value, reference) in &by_h {
            sum += at_time(value, reference, t, h);
        }
        sum
    };
    if total(start) <= level {
        return None;
    }
    if by_h.iter().all(|p| p.1 > 0.0) {
        return Some(newton(&by_h, level, start));
    }
    let n = by_h.len() as f64;
    let mut hi = start;
    for &(h, value, reference) in &by_h {
        if let Some(t) = falls_below_at(value, reference, level / n, h) {
            if t > hi {
                hi = t;
            }
        }
    }
    if total(hi) >= level {
        let mut fell = false;
        for _ in 0..64 {
            hi = start + 2.0 * (hi - start) + 1.0;
            if total(hi) < level {
                fell = true;
                break;
            }
        }
        if !fell {
            return None;
        }
    }
    let mut lo = start;
    while hi - lo > 1e-3 {
        let mid = (lo + hi) / 2.0;
        if mid == lo || mid == hi {
            break;
        }
        if total(mid) < level {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

fn falls_below_at(value: f64, reference: f64, level: f64, h: f64) -> Option<f64> {
    if level <= 0.0 || value <= level {
        return None;
    }
    Some(reference + h * (value / level).log2())
}

fn newton(by_h: &[(f64, f64, f64)], level: f64, start: f64) -> f64 {
    let ln2 = 2.0f64.ln();
    let mut t = start;
    for _ in 0..100 {
        let mut f = -level;
        let mut slope = 0.0;
        for &(h, value, reference) in by_h {
            let v = value * pow2(-(t - reference) / h);
            f += v;
            slope -= v * ln2 / h;
        }
        if f <= 0.0 || slope == 0.0 {
            break;
        }
        let step = f / -slope;
        t += step;
        if step < 1e-4 {
            break;
        }
    }
    t
}

#[pymodule]
fn baton_scorer_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<State>()?;
    m.add_class::<Core>()?;
    m.add_class::<WireEvent>()?;
    m.add_class::<LeadIndex>()?;
    m.add_function(wrap_pyfunction!(url_glob_match, m)?)?;
    m.add_function(wrap_pyfunction!(py_round_py, m)?)?;
    m.add_function(wrap_pyfunction!(reads_exact_layout, m)?)?;
    m.add_function(wrap_pyfunction!(set_parse_ahead, m)?)?;
    m.add_function(wrap_pyfunction!(utc_from_timestamp, m)?)?;
    m.add_function(wrap_pyfunction!(records::read_record_set, m)?)?;
    m.add_function(wrap_pyfunction!(records::time_order_keys, m)?)?;
    Ok(())
}

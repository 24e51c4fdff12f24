//! ``Transition`` (and ``Signal``) objects, built as ``baton_scorer.transitions.move`` builds them
//! but without pydantic's per-call machinery: ``object.__new__``, then the instance dict
//! and pydantic's three slots set as ``object.__setattr__`` sets them (pydantic's own
//! ``__setattr__`` would validate). ``test_native_core.py`` checks the result equals the
//! reference's, fields set and field order included.

mod datetime;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTzInfo};
use sha2::{Digest, Sha256};

use crate::ffi::{generic_setattr, set_from, untrack, DirectModel};
use crate::state::Stage;
pub(crate) use datetime::{is_utc, utc_datetime};

/// ``Transition``'s fields in declaration order; ``core.py`` checks the model has exactly
/// these (and ``Signal`` its two), so a schema change stops the import, not the output.
const TRANSITION_FIELDS: [&str; 20] = [
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
    "sealed", // privacy mode: the scorer's shell seals; built as None (the template's)
];
/// Every stage, in ``TransitionMaker::stages`` order.
const STAGES: [Stage; 6] = [
    Stage::New,
    Stage::Mql,
    Stage::Sql,
    Stage::Recycled,
    Stage::Disqualified,
    Stage::Customer,
];

/// What a transition is made of, as the core computed it.
pub(crate) struct Built<'a, 'py> {
    pub(crate) transition_id: String,
    pub(crate) lead_id: &'a str,
    pub(crate) from_stage: Stage,
    pub(crate) to_stage: Stage,
    pub(crate) score: f64,
    pub(crate) fit: f64,
    pub(crate) engagement: f64,
    pub(crate) reason: &'a str,
    pub(crate) reason_kind: &'a str,
    pub(crate) express: bool,
    pub(crate) trigger_id: &'a str,
    pub(crate) trigger_name: Option<&'a str>,
    pub(crate) trigger_at: f64,
    pub(crate) rules_version: &'a str,
    pub(crate) signals: &'a [(String, f64)],
    pub(crate) email: Option<&'a str>,
    pub(crate) traits: &'a Bound<'py, PyDict>,
}

/// Builds transitions from the classes and constants ``baton_scorer.core`` passes in.
pub(crate) struct TransitionMaker {
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
    // Each class, when its instances can be made without calls.
    transition_direct: Option<DirectModel>,
    signal_direct: Option<DirectModel>,
    keys: Vec<Py<PyString>>,
    // A transition's dict with its keys in field order (values None): copied, then
    // filled, which does not grow a table the way twenty inserts into an empty one do.
    template: Py<PyDict>,
    signal_keys: [Py<PyString>; 2],
}

impl TransitionMaker {
    pub(crate) fn new(spec: &Bound<'_, PyDict>) -> PyResult<TransitionMaker> {
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
            // Transitions are taken out of the collector's view (``untrack``), which only
            // applies to objects of a garbage-collected type (pydantic models are).
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
            transition_direct: DirectModel::of(&item("transition")?)?,
            signal_direct: DirectModel::of(&item("signal")?)?,
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
    /// the fields set, as ``object.__new__`` and ``object.__setattr__`` make it; made
    /// without those calls when ``direct`` (the class, checked) is given.
    fn instance<'py>(
        &self,
        py: Python<'py>,
        cls: &PyObject,
        direct: Option<&DirectModel>,
        values: Bound<'py, PyDict>,
        given: &PyObject,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fields_set = set_from(given.bind(py))?;
        let obj = match direct {
            Some(direct) => direct.instance(py, &values, &fields_set)?,
            None => {
                let none = py.None().into_bound(py);
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

    /// Whether Transition and Signal instances are made without calls.
    pub(crate) fn builds_directly(&self) -> bool {
        self.transition_direct.is_some() && self.signal_direct.is_some()
    }

    pub(crate) fn build(&self, py: Python<'_>, t: &Built<'_, '_>) -> PyResult<PyObject> {
        let mut signals = Vec::with_capacity(t.signals.len());
        for (label, points) in t.signals {
            let values = PyDict::new(py);
            values.set_item(self.signal_keys[0].bind(py), label)?;
            values.set_item(self.signal_keys[1].bind(py), points)?;
            signals.push(self.instance(
                py,
                &self.signal,
                self.signal_direct.as_ref(),
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
                self.transition_direct.as_ref(),
                dict,
                &self.given,
            )?
            .unbind())
    }
}

/// ``baton_shared.ids.stable_id``: the first 16 bytes of the SHA-256 of the parts joined by
/// U+001F, in hex (a transition's id, the same for the same lead, stage and trigger).
pub(crate) fn stable_id(parts: &[&str]) -> String {
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

#[cfg(test)]
mod tests {
    use super::stable_id;

    #[test]
    fn stable_ids_are_the_first_half_of_a_sha256_in_hex() {
        // hashlib.sha256("lead-1\x1fsql\x1fe-9".encode()).hexdigest()[:32]
        assert_eq!(
            stable_id(&["lead-1", "sql", "e-9"]),
            "901a2eea2986c22e7cc4242db60a8e21"
        );
        assert_ne!(stable_id(&["ab", "c"]), stable_id(&["a", "bc"]));
        assert_eq!(stable_id(&["x"]).len(), 32);
    }
}

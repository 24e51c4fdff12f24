//! An event as scoring reads it, whichever form it came in: a ``LeadEvent`` object
//! (``score_event``, ``score_batch``) or its encoded bytes (``score_records``), with the
//! Python object that callbacks are given made only when one needs it.

use std::cell::OnceCell;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::wire::{wire_urls, Wire};

/// What scoring reads from an event. ``object`` is what Python callbacks (plan building,
/// matchers that look at URLs or properties) are given: the LeadEvent itself, or for an
/// encoded event a :class:`WireEvent` made when first needed.
pub(crate) struct Ev<'a, 'py> {
    pub(crate) event_id: &'a str,
    pub(crate) lead_id: &'a str,
    pub(crate) name: Option<&'a str>,
    pub(crate) type_: &'a str,
    pub(crate) page_category: Option<&'a str>,
    pub(crate) email: Option<&'a str>,
    pub(crate) traits: Option<Bound<'py, PyDict>>, // None when the event has none
    pub(crate) object: OnceCell<Bound<'py, PyAny>>,
    pub(crate) wire: Option<&'a Wire<'a>>,
    pub(crate) urls: OnceCell<Option<Vec<String>>>,
}

impl<'py> Ev<'_, 'py> {
    /// ``rules._urls(event)``: the page URL and path from ``properties`` and from
    /// ``context.page``, the strings only; None when only Python can read them.
    pub(crate) fn urls(&self, py: Python<'py>, types: &WireTypes) -> PyResult<Option<&[String]>> {
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

    /// The object Python callbacks are given (see :struct:`Ev`).
    pub(crate) fn object(
        &self,
        py: Python<'py>,
        types: &WireTypes,
    ) -> PyResult<&Bound<'py, PyAny>> {
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
pub(crate) struct PyFields<'py> {
    event_id: Bound<'py, PyAny>,
    lead_id: Bound<'py, PyAny>,
    name: Bound<'py, PyAny>,
    type_: Bound<'py, PyAny>,
    page_category: Bound<'py, PyAny>,
    email: Bound<'py, PyAny>,
    traits: Bound<'py, PyAny>,
}

/// ``None`` or the string's text.
fn opt_text<'a>(value: &'a Bound<'_, PyAny>) -> PyResult<Option<&'a str>> {
    if value.is_none() {
        Ok(None)
    } else {
        Ok(Some(value.downcast::<PyString>()?.to_str()?))
    }
}

impl<'py> PyFields<'py> {
    pub(crate) fn of(py: Python<'py>, event: &Bound<'py, PyAny>) -> PyResult<PyFields<'py>> {
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

    pub(crate) fn view<'a>(&'a self, event: &Bound<'py, PyAny>) -> PyResult<Ev<'a, 'py>> {
        let traits = self.traits.downcast::<PyDict>()?;
        let object = OnceCell::new();
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
            urls: OnceCell::new(),
        })
    }
}

/// The event types (value -> ``EventType`` member) and pydantic-core's ``from_json``,
/// which turns a JSON object into exactly the dict pydantic gives a ``dict[str, Any]``.
pub(crate) struct WireTypes {
    pub(crate) types: Py<PyDict>,
    pub(crate) names: Vec<String>,
    pub(crate) from_json: PyObject,
}

impl WireTypes {
    /// The ``EventType`` member of ``value``.
    pub(crate) fn event_type<'py>(&self, py: Python<'py>, value: &str) -> PyResult<PyObject> {
        self.types
            .bind(py)
            .get_item(value)?
            .map(Bound::unbind)
            .ok_or_else(|| PyValueError::new_err(format!("unknown event type {value:?}")))
    }

    /// ``from_json(json)``: a free-form object as pydantic reads it.
    pub(crate) fn parse_json<'py>(
        &self,
        py: Python<'py>,
        json: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
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
pub(crate) struct WireEvent {
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

/// ``event.occurred_at.timestamp()``.
pub(crate) fn timestamp(py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<f64> {
    event
        .getattr(intern!(py, "occurred_at"))?
        .call_method0(intern!(py, "timestamp"))?
        .extract()
}

impl<'a, 'py> Ev<'a, 'py> {
    /// What scoring reads from an encoded event (its ``traits`` read by ``wire_traits``).
    pub(crate) fn of_wire(wire: &'a Wire<'a>, traits: Option<Bound<'py, PyDict>>) -> Self {
        Ev {
            event_id: &wire.event_id,
            lead_id: &wire.lead_id,
            name: wire.name.as_deref(),
            type_: &wire.type_,
            page_category: wire.page_category.as_deref(),
            email: wire.email.as_deref(),
            traits,
            object: OnceCell::new(),
            wire: Some(wire),
            urls: OnceCell::new(),
        }
    }
}

/// An encoded event's ``traits``, as pydantic gives them (None when empty).
pub(crate) fn wire_traits<'py>(
    wire: &Wire<'_>,
    py: Python<'py>,
    types: &WireTypes,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    if wire.traits == "{}" {
        return Ok(None);
    }
    let traits = types
        .parse_json(py, wire.traits)?
        .downcast_into::<PyDict>()?;
    Ok((!traits.is_empty()).then_some(traits))
}

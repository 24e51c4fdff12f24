//! A rule's match that looks past the event's shape: a URL glob the core checks itself
//! (``fnmatch.fnmatchcase`` with ``*`` and ``?``), or a Python ``Match`` it calls.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::event::{Ev, WireTypes};
use crate::glob::glob_match;

/// A rule's matcher, as the core runs it.
pub(crate) enum Matcher {
    Url { pattern: Vec<char>, py: PyObject },
    Py(PyObject),
}

impl Matcher {
    /// ``m`` (a ``rules.Match``) as a URL glob when it is one the core can check.
    pub(crate) fn of(m: &Bound<'_, PyAny>) -> PyResult<Matcher> {
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

    /// ``m.matches(event)``.
    pub(crate) fn matches<'py>(
        &self,
        py: Python<'py>,
        ev: &Ev<'_, 'py>,
        types: &WireTypes,
    ) -> PyResult<bool> {
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

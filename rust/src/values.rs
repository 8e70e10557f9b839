//! JSON and TOML documents as plain Python objects, so the per-command path never imports the
//! standard library's `json` (which pulls in `re` and `enum`) or `tomllib`.
//!
//! JSON: objects become dicts in document order (a repeated key keeps its first position and
//! its last value, as `json.loads` does); integers within the i64 and u64 ranges are exact,
//! larger ones become floats and `-0` becomes `-0.0` (serde_json's rules). Floats are read
//! exactly (serde_json's `float_roundtrip`), so `json_loads(json.dumps(x)) == x`. Nesting deeper
//! than serde_json's limit of 128 is an error, not a stack overflow.
//!
//! TOML: the `toml` crate parses TOML 1.1, a superset of the TOML 1.0 the config file is
//! written in. Date and time values come back as their RFC 3339 text, since the provider's
//! configuration has none and a `datetime` import would cost more start-up time.

use std::cell::RefCell;
use std::fmt;
use std::ops::Range;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, Serializer};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Deepest nesting of lists and dicts `json_dumps` writes, the same limit serde_json reads.
pub const MAX_DEPTH: usize = 128;

/// Builds the Python object for one JSON value while serde_json parses it.
#[derive(Clone, Copy)]
struct Build<'py>(Python<'py>);

impl<'de, 'py> DeserializeSeed<'de> for Build<'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: de::Deserializer<'de>>(self, input: D) -> Result<Self::Value, D::Error> {
        input.deserialize_any(self)
    }
}

impl<'de, 'py> Visitor<'de> for Build<'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.0, v).to_owned().into_any())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(PyInt::new(self.0, v).into_any())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(PyInt::new(self.0, v).into_any())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(PyFloat::new(self.0, v).into_any())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.0, v).into_any())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0.None().into_bound(self.0))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
        let list = PyList::empty(self.0);
        while let Some(item) = items.next_element_seed(self)? {
            list.append(item).map_err(de::Error::custom)?;
        }
        Ok(list.into_any())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.0);
        // JSON keys are strings, so the same seed builds them.
        while let Some((key, value)) = entries.next_entry_seed(self, self)? {
            dict.set_item(key, value).map_err(de::Error::custom)?;
        }
        Ok(dict.into_any())
    }
}

/// Parse one JSON document into Python objects; trailing data other than whitespace is an error.
pub fn json_loads<'py>(py: Python<'py>, data: &[u8]) -> Result<Bound<'py, PyAny>, String> {
    let mut input = serde_json::Deserializer::from_slice(data);
    let value = Build(py)
        .deserialize(&mut input)
        .map_err(|err| err.to_string())?;
    input.end().map_err(|err| err.to_string())?;
    Ok(value)
}

/// A Python value seen through serde, so serde_json writes (and escapes) it.
struct Dump<'a, 'py> {
    value: &'a Bound<'py, PyAny>,
    depth: usize,
    /// The first Python exception, raised as is once serde_json gives up.
    failure: &'a RefCell<Option<PyErr>>,
}

impl<'a, 'py> Dump<'a, 'py> {
    /// Record `err` for the caller and hand serde a placeholder carrying its message.
    fn fail<E: ser::Error>(&self, err: PyErr) -> E {
        let placeholder = E::custom(&err);
        self.failure.borrow_mut().get_or_insert(err);
        placeholder
    }

    /// The view of a list item or dict value, one level deeper.
    fn child<'b>(&'b self, value: &'b Bound<'py, PyAny>) -> Dump<'b, 'py> {
        Dump {
            value,
            depth: self.depth + 1,
            failure: self.failure,
        }
    }

    /// Write a list or tuple of `len` items as a JSON array, one level deeper.
    fn array<S: Serializer>(
        &self,
        out: S,
        len: usize,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
    ) -> Result<S::Ok, S::Error> {
        self.check_depth()?;
        let mut seq = out.serialize_seq(Some(len))?;
        for item in items {
            seq.serialize_element(&self.child(&item))?;
        }
        seq.end()
    }

    /// Refuse to go deeper than [`MAX_DEPTH`]; a list that contains itself ends here.
    fn check_depth<E: ser::Error>(&self) -> Result<(), E> {
        if self.depth >= MAX_DEPTH {
            let msg = format!("JSON value nested too deeply (more than {MAX_DEPTH} levels)");
            return Err(self.fail(PyValueError::new_err(msg)));
        }
        Ok(())
    }
}

impl Serialize for Dump<'_, '_> {
    fn serialize<S: Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        let value = self.value;
        if let Ok(text) = value.cast::<PyString>() {
            return match text.to_str() {
                Ok(text) => out.serialize_str(text),
                Err(err) => Err(self.fail(err)),
            };
        }
        if value.is_none() {
            return out.serialize_unit();
        }
        // bool is a subclass of int: test it first.
        if let Ok(flag) = value.cast::<PyBool>() {
            return out.serialize_bool(flag.is_true());
        }
        if value.cast::<PyInt>().is_ok() {
            if let Ok(n) = value.extract::<i64>() {
                return out.serialize_i64(n);
            }
            return match value.extract::<u64>() {
                Ok(n) => out.serialize_u64(n),
                Err(_) => Err(self.fail(PyValueError::new_err(
                    "int out of range for JSON (beyond 64 bits)",
                ))),
            };
        }
        if let Ok(number) = value.cast::<PyFloat>() {
            let x = number.value();
            if !x.is_finite() {
                let msg = format!("Out of range float values are not JSON compliant: {x}");
                return Err(self.fail(PyValueError::new_err(msg)));
            }
            return out.serialize_f64(x);
        }
        if let Ok(dict) = value.cast::<PyDict>() {
            self.check_depth()?;
            let mut map = out.serialize_map(Some(dict.len()))?;
            for (key, item) in dict.iter() {
                let Ok(key) = key.cast::<PyString>() else {
                    let msg = format!("keys must be str, not {}", type_name(&key));
                    return Err(self.fail(PyTypeError::new_err(msg)));
                };
                let key = key.to_str().map_err(|err| self.fail(err))?;
                map.serialize_entry(key, &self.child(&item))?;
            }
            return map.end();
        }
        if let Ok(list) = value.cast::<PyList>() {
            return self.array(out, list.len(), list.iter());
        }
        if let Ok(tuple) = value.cast::<PyTuple>() {
            return self.array(out, tuple.len(), tuple.iter());
        }
        let msg = format!(
            "Object of type {} is not JSON serializable",
            type_name(value)
        );
        Err(self.fail(PyTypeError::new_err(msg)))
    }
}

/// The `__name__` of `value`'s type, for error messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |name| name.to_string())
}

/// Serialize a Python value as compact JSON (no spaces), keeping dict insertion order.
pub fn json_dumps(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let failure = RefCell::new(None);
    let view = Dump {
        value,
        depth: 0,
        failure: &failure,
    };
    serde_json::to_vec(&view).map_err(|err| {
        failure
            .take()
            .unwrap_or_else(|| PyValueError::new_err(err.to_string()))
    })
}

/// One-line message for a TOML error: the parser's message and, when known, where (1-based).
///
/// Only the position is taken from `text`: the parser's multi-line rendering quotes the source
/// line, which may hold secrets, so it is not used.
pub fn toml_error_message(text: &str, message: &str, span: Option<Range<usize>>) -> String {
    let mut out = message
        .split('\n')
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if let Some(span) = span {
        let mut start = span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        out.push_str(&format!(" at line {line}, column {column}"));
    }
    out
}

/// Parse a TOML document into Python objects (tables are dicts in document order).
pub fn toml_loads<'py>(py: Python<'py>, text: &str) -> Result<Bound<'py, PyDict>, String> {
    let root =
        DeTable::parse(text).map_err(|err| toml_error_message(text, err.message(), err.span()))?;
    toml_table(py, text, root.get_ref())
}

/// The dict for one TOML table, keys in document order.
fn toml_table<'py>(
    py: Python<'py>,
    text: &str,
    table: &DeTable<'_>,
) -> Result<Bound<'py, PyDict>, String> {
    let dict = PyDict::new(py);
    for (key, value) in table {
        let item = toml_value(py, text, value)?;
        dict.set_item(key.get_ref().as_ref(), item)
            .map_err(|err| err.to_string())?;
    }
    Ok(dict)
}

/// The Python object for one TOML value; `text` is only used to place errors.
fn toml_value<'py>(
    py: Python<'py>,
    text: &str,
    value: &Spanned<DeValue<'_>>,
) -> Result<Bound<'py, PyAny>, String> {
    Ok(match value.get_ref() {
        DeValue::String(s) => PyString::new(py, s).into_any(),
        DeValue::Integer(n) => {
            let (digits, radix) = (n.as_str(), n.radix());
            // TOML promises 64 bits; wider values are kept exact, as tomllib does, up to 128
            // (i64 first: it is the common case and the cheaper conversion).
            if let Ok(v) = i64::from_str_radix(digits, radix) {
                PyInt::new(py, v).into_any()
            } else if let Ok(v) = i128::from_str_radix(digits, radix) {
                PyInt::new(py, v).into_any()
            } else if let Ok(v) = u128::from_str_radix(digits, radix) {
                PyInt::new(py, v).into_any()
            } else {
                return Err(toml_error_message(
                    text,
                    "integer number overflowed",
                    Some(value.span()),
                ));
            }
        }
        DeValue::Float(x) => {
            let digits = x.as_str();
            match digits.parse::<f64>() {
                Ok(v) if v.is_finite() || digits.contains("inf") || digits.contains("nan") => {
                    PyFloat::new(py, v).into_any()
                }
                _ => {
                    return Err(toml_error_message(
                        text,
                        "floating-point number overflowed",
                        Some(value.span()),
                    ))
                }
            }
        }
        DeValue::Boolean(flag) => PyBool::new(py, *flag).to_owned().into_any(),
        DeValue::Datetime(when) => PyString::new(py, &when.to_string()).into_any(),
        DeValue::Array(items) => {
            let list = PyList::empty(py);
            for item in items.iter() {
                list.append(toml_value(py, text, item)?)
                    .map_err(|err| err.to_string())?;
            }
            list.into_any()
        }
        DeValue::Table(table) => toml_table(py, text, table)?.into_any(),
    })
}

/// Parse JSON bytes into plain Python objects.
#[pyfunction(name = "json_loads")]
pub fn json_loads_py<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    json_loads(py, data).map_err(PyValueError::new_err)
}

/// Serialize a Python value to compact JSON bytes.
#[pyfunction(name = "json_dumps")]
pub fn json_dumps_py<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let json = json_dumps(value)?;
    Ok(PyBytes::new(value.py(), &json))
}

/// Parse a TOML document into plain Python objects.
#[pyfunction(name = "toml_loads")]
pub fn toml_loads_py<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyDict>> {
    toml_loads(py, text).map_err(PyValueError::new_err)
}

#[cfg(test)]
#[path = "values_tests.rs"]
mod tests;

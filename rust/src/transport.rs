//! `LxdTransport`: the Python face of the HTTP client.

use std::time::Duration;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::client::Client;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::tls::TlsOptions;

/// HTTP/1.1 client for the LXD REST API over a unix socket or HTTPS; thread-safe.
#[pyclass(module = "garm_provider_lxd._native", frozen)]
pub struct LxdTransport {
    client: Client,
}

/// A positive, finite number of seconds as a `Duration`.
pub fn seconds(value: f64) -> Result<Duration, Error> {
    if value > 0.0 {
        if let Ok(duration) = Duration::try_from_secs_f64(value) {
            return Ok(duration);
        }
    }
    Err(Error::Invalid(format!(
        "timeout must be a positive number of seconds, not {value}"
    )))
}

#[pymethods]
impl LxdTransport {
    /// Describe the endpoint; connects lazily on the first request.
    #[new]
    #[pyo3(signature = (
        *,
        unix_socket = None,
        url = None,
        client_cert = None,
        client_key = None,
        server_cert = None,
        ca_cert = None,
        timeout = 30.0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        unix_socket: Option<&str>,
        url: Option<&str>,
        client_cert: Option<&[u8]>,
        client_key: Option<&[u8]>,
        server_cert: Option<&[u8]>,
        ca_cert: Option<&[u8]>,
        timeout: f64,
    ) -> PyResult<Self> {
        let timeout = seconds(timeout)?;
        let endpoint = match (unix_socket, url) {
            (Some(path), None) => Endpoint::unix(path)?,
            (None, Some(url)) => {
                let tls = TlsOptions {
                    client_cert,
                    client_key,
                    server_cert,
                    ca_cert,
                };
                Endpoint::https(url, &tls)?
            }
            _ => {
                return Err(Error::Invalid("give exactly one of unix_socket and url".into()).into())
            }
        };
        Ok(LxdTransport {
            client: Client::new(endpoint, timeout)?,
        })
    }

    /// Send one request (path includes the query) and return (status, body bytes).
    #[pyo3(signature = (method, path, body = None, timeout = None, max_bytes = None))]
    fn request<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        timeout: Option<f64>,
        max_bytes: Option<usize>,
    ) -> PyResult<(u16, Bound<'py, PyBytes>)> {
        let timeout = timeout.map(seconds).transpose()?;
        let body = body.map(Bytes::copy_from_slice);
        let response = py.detach(|| {
            self.client
                .request_bounded(method, path, body, timeout, max_bytes)
        })?;
        Ok((response.status, PyBytes::new(py, &response.body)))
    }

    /// Read the last bytes of a regular file of an instance over LXD's SFTP endpoint.
    #[pyo3(signature = (path, file, max_bytes, timeout = None, lstat_first = true))]
    fn read_file_tail<'py>(
        &self,
        py: Python<'py>,
        path: &str,
        file: &str,
        max_bytes: usize,
        timeout: Option<f64>,
        lstat_first: bool,
    ) -> PyResult<(Option<&'static str>, Bound<'py, PyBytes>, u64)> {
        let timeout = timeout.map(seconds).transpose()?;
        let tail = py.detach(|| {
            self.client
                .read_file_tail(path, file, max_bytes, timeout, lstat_first)
        })?;
        Ok((
            tail.kind.map(|kind| kind.describe()),
            PyBytes::new(py, &tail.data),
            tail.size,
        ))
    }

    fn __repr__(&self) -> String {
        format!("<LxdTransport {}>", self.client.endpoint().display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_must_be_positive_and_finite() {
        assert_eq!(seconds(1.5).ok(), Some(Duration::from_millis(1500)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
            assert!(seconds(bad).is_err(), "{bad} accepted");
        }
    }
}

//! The one error type of the extension and its mapping onto Python exceptions.

use std::fmt;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

// Defined in Python (python/garm_provider_lxd/errors.py) so that every layer raises and catches
// the same classes; imported here instead of redefined, which also works under abi3.
pyo3::import_exception!(garm_provider_lxd.errors, LxdError);
pyo3::import_exception!(garm_provider_lxd.errors, LxdConnectionError);
pyo3::import_exception!(garm_provider_lxd.errors, LxdTimeoutError);

/// Where a transport failure happened, used to phrase the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opening the unix socket or the TCP connection.
    Connect,
    /// The TLS handshake (includes certificate verification).
    Tls,
    /// Sending the request or reading the response.
    Exchange,
}

/// Every failure the extension reports.
#[derive(Debug)]
pub enum Error {
    /// An argument from the caller (PEM data, URL, method, path, timeout) is unusable.
    Invalid(String),
    /// A response body handed in for conversion is not the LXD JSON it should be.
    Response(String),
    /// The LXD server could not be reached, refused us, or the connection broke.
    Connection {
        endpoint: String,
        stage: Stage,
        detail: String,
    },
    /// The server answered with something that is not HTTP/1.1.
    Protocol { endpoint: String, detail: String },
    /// The response body is longer than the client reads (`client::MAX_BODY_BYTES`).
    TooLarge {
        endpoint: String,
        method: String,
        path: String,
        limit: usize,
    },
    /// An SFTP session through LXD failed: no upgrade, a broken exchange, or a file error.
    Sftp {
        endpoint: String,
        path: String,
        detail: String,
    },
    /// The request did not complete before its deadline.
    Timeout {
        endpoint: String,
        method: String,
        path: String,
        after: Duration,
    },
}

impl Error {
    /// A connection failure at `stage`, with `source` and its causes as the detail.
    pub fn connection(endpoint: &str, stage: Stage, source: &dyn std::error::Error) -> Self {
        Error::Connection {
            endpoint: endpoint.to_owned(),
            stage,
            detail: chain(source),
        }
    }
}

/// Render an error and its causes on one line, skipping causes already in the text.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text.replace('\n', " ")
}

/// A byte count as people read it: whole MiB when it is one, else bytes.
fn size(bytes: usize) -> String {
    const MIB: usize = 1 << 20;
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(msg) | Error::Response(msg) => f.write_str(msg),
            Error::Connection {
                endpoint,
                stage,
                detail,
            } => match stage {
                Stage::Connect => write!(f, "cannot connect to LXD at {endpoint}: {detail}"),
                Stage::Tls => write!(f, "TLS handshake with LXD at {endpoint} failed: {detail}"),
                Stage::Exchange => write!(f, "connection to LXD at {endpoint} failed: {detail}"),
            },
            Error::Protocol { endpoint, detail } => {
                write!(f, "invalid HTTP response from LXD at {endpoint}: {detail}")
            }
            Error::TooLarge {
                endpoint,
                method,
                path,
                limit,
            } => write!(
                f,
                "LXD response to {method} {path} from {endpoint} is larger than {}; not read",
                size(*limit)
            ),
            Error::Sftp {
                endpoint,
                path,
                detail,
            } => write!(f, "SFTP via LXD at {endpoint} ({path}): {detail}"),
            Error::Timeout {
                endpoint,
                method,
                path,
                after,
            } => write!(
                f,
                "LXD request {method} {path} to {endpoint} timed out after {}s",
                after.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Response(format!("invalid LXD response: {err}"))
    }
}

impl From<rustls::Error> for Error {
    fn from(err: rustls::Error) -> Self {
        Error::Invalid(format!("unusable TLS settings: {err}"))
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        let msg = err.to_string();
        match err {
            Error::Invalid(_) => PyValueError::new_err(msg),
            Error::Connection { .. } => LxdConnectionError::new_err(msg),
            // A body that is not what LXD sends is the server's fault, like a protocol error:
            // one line naming it, exit 1, never an "internal error".
            Error::Protocol { .. }
            | Error::TooLarge { .. }
            | Error::Response(_)
            | Error::Sftp { .. } => LxdError::new_err(msg),
            Error::Timeout { .. } => LxdTimeoutError::new_err(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_message_names_endpoint_and_cause() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = Error::connection("/run/lxd.socket", Stage::Connect, &io);
        assert_eq!(
            err.to_string(),
            "cannot connect to LXD at /run/lxd.socket: entity not found"
        );
    }

    #[test]
    fn timeout_message_is_one_line_with_seconds() {
        let err = Error::Timeout {
            endpoint: "https://lxd.example:8443".into(),
            method: "GET".into(),
            path: "/1.0".into(),
            after: Duration::from_millis(2500),
        };
        assert_eq!(
            err.to_string(),
            "LXD request GET /1.0 to https://lxd.example:8443 timed out after 2.5s"
        );
    }
}

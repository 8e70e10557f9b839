//! Where LXD listens and how to open a byte stream to it.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use hyper::header::HeaderValue;
use hyper::Uri;
use rustls::pki_types::ServerName;
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

use crate::error::{Error, Stage};
use crate::stream::{Inner, Stream};
use crate::tls::{self, TlsOptions};

enum Kind {
    Unix(PathBuf),
    Https {
        host: String,
        port: u16,
        server_name: ServerName<'static>,
        tls: TlsConnector,
    },
}

/// An LXD API endpoint: the unix socket or an `https://` URL with its TLS settings.
pub struct Endpoint {
    kind: Kind,
    host_header: HeaderValue,
    base_path: String,
    display: String,
}

impl Endpoint {
    /// The local unix socket at `path` (LXD expects any Host; the Go client sends "lxd").
    pub fn unix(path: &str) -> Result<Self, Error> {
        if path.is_empty() {
            return Err(Error::Invalid("unix_socket must not be empty".into()));
        }
        Ok(Endpoint {
            kind: Kind::Unix(PathBuf::from(path)),
            host_header: HeaderValue::from_static("lxd"),
            base_path: String::new(),
            display: path.to_owned(),
        })
    }

    /// An HTTPS endpoint; the port defaults to 443 as in Go's URL handling.
    pub fn https(url: &str, opts: &TlsOptions<'_>) -> Result<Self, Error> {
        let bad = |why: &str| Error::Invalid(format!("url {:?}: {why}", redact_url(url)));
        let uri: Uri = url.parse().map_err(|_| bad("not a valid URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("only https:// URLs are supported"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            // Do not echo the URL: the user information may hold a password.
            return Err(Error::Invalid(
                "url: user information (user:password@) is not supported".into(),
            ));
        }
        if uri.query().is_some() {
            return Err(bad("a query string is not supported"));
        }
        let bracketed = authority.host();
        let host = bracketed.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let server_name = ServerName::try_from(host.to_owned()).map_err(|_| bad("invalid host"))?;
        let host_header =
            HeaderValue::from_str(authority.as_str()).map_err(|_| bad("invalid host"))?;
        Ok(Endpoint {
            kind: Kind::Https {
                host: host.to_owned(),
                port: authority.port_u16().unwrap_or(443),
                server_name,
                tls: TlsConnector::from(tls::client_config(opts)?),
            },
            host_header,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            display: redact_url(url.trim_end_matches('/')),
        })
    }

    /// How messages name this endpoint: the socket path or the URL.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The value of the Host header.
    pub fn host_header(&self) -> &HeaderValue {
        &self.host_header
    }

    /// Prefix a request path with the URL's own path, if it has one.
    pub fn full_path(&self, path: &str) -> String {
        format!("{}{}", self.base_path, path)
    }

    /// Open a new stream; `received` is raised whenever a byte is read from it.
    pub async fn open(&self, received: Arc<AtomicBool>) -> Result<Stream, Error> {
        let inner = match &self.kind {
            Kind::Unix(path) => Inner::Unix(
                UnixStream::connect(path)
                    .await
                    .map_err(|e| Error::connection(&self.display, Stage::Connect, &e))?,
            ),
            Kind::Https {
                host,
                port,
                server_name,
                tls,
            } => {
                let tcp = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| Error::connection(&self.display, Stage::Connect, &e))?;
                // Requests are small and latency-bound: do not wait to coalesce writes.
                tcp.set_nodelay(true)
                    .map_err(|e| Error::connection(&self.display, Stage::Connect, &e))?;
                let stream =
                    tls.connect(server_name.clone(), tcp)
                        .await
                        .map_err(|e| Error::Connection {
                            endpoint: self.display.clone(),
                            stage: Stage::Tls,
                            detail: tls::handshake_problem(&e),
                        })?;
                Inner::Tls(Box::new(stream))
            }
        };
        Ok(Stream::new(inner, received))
    }
}

/// A URL as messages may show it: user information, query string and fragment replaced by
/// `***`. Without `://`, everything up to the path counts as the authority.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rfind('@') {
        Some(at) => format!("***{}", &authority[at..]),
        None => authority.to_owned(),
    };
    let path = match tail.find(['?', '#']) {
        Some(at) => format!("{}***", &tail[..=at]),
        None => tail.to_owned(),
    };
    format!("{scheme}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn https_error(url: &str) -> String {
        match Endpoint::https(url, &TlsOptions::default()) {
            Ok(_) => String::from("ok"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn https_url_keeps_port_and_base_path() {
        let ep = Endpoint::https("https://[::1]:8443/lxd/", &TlsOptions::default());
        let ep = ep.map_err(|e| e.to_string());
        assert!(ep.is_ok(), "{ep:?}", ep = ep.as_ref().err());
        if let Ok(ep) = ep {
            assert_eq!(ep.host_header(), "[::1]:8443");
            assert_eq!(ep.full_path("/1.0"), "/lxd/1.0");
            assert_eq!(ep.display(), "https://[::1]:8443/lxd");
            assert!(matches!(&ep.kind, Kind::Https { host, port: 8443, .. } if host == "::1"));
        }
    }

    #[test]
    fn plain_http_and_userinfo_are_refused() {
        assert_eq!(
            https_error("http://lxd:8443"),
            "url \"http://lxd:8443\": only https:// URLs are supported"
        );
        assert_eq!(
            https_error("https://u:p@lxd:8443"),
            "url: user information (user:password@) is not supported"
        );
    }

    #[test]
    fn messages_never_show_user_information_or_query() {
        assert_eq!(
            https_error("http://user:secret@lxd:8443/a?token=t"),
            "url \"http://***@lxd:8443/a?***\": only https:// URLs are supported"
        );
        assert_eq!(
            https_error("https://user:sec ret@lxd:8443"),
            "url \"https://***@lxd:8443\": not a valid URL"
        );
        assert_eq!(redact_url("user:secret@lxd:8443"), "***@lxd:8443");
        assert_eq!(
            redact_url("https://lxd:8443/x#frag"),
            "https://lxd:8443/x#***"
        );
        assert_eq!(redact_url("https://[::1]:8443"), "https://[::1]:8443");
    }

    #[test]
    fn unix_endpoint_sends_host_lxd() {
        let ep = Endpoint::unix("/var/lib/lxd/unix.socket").map_err(|e| e.to_string());
        assert_eq!(
            ep.map(|e| e.host_header().clone()),
            Ok(HeaderValue::from_static("lxd"))
        );
    }
}

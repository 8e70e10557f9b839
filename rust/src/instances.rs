//! LXD instance JSON → GARM `ProviderInstance` JSON, bytes to bytes.
//!
//! Field rules follow the Go provider (provider/util.go, lxdInstanceToAPIInstance) with its
//! gaps closed: the `Error` status, `user.os-type` as a real fallback, IPv4 before IPv6.

use std::borrow::Cow;
use std::fmt;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::Serialize;

use crate::error::Error;
use crate::lenient::{List, Obj, Object, Text};

/// `image.os` values (lowercased) of Linux images: garm-provider-common's OSToOSTypeMap plus
/// the other distributions on the LXD and Incus image servers. Python sees it as
/// `_native.LINUX_DISTROS` (the tests' reference conversion uses it).
pub const LINUX_DISTROS: &[&str] = &[
    "alma",
    "almalinux",
    "alpine",
    "alt",
    "amazonlinux",
    "arch",
    "archlinux",
    "busybox",
    "centos",
    "debian",
    "devuan",
    "fedora",
    "flatcar",
    "funtoo",
    "gentoo",
    "kali",
    "linux",
    "linuxmint",
    "mint",
    "nixos",
    "openeuler",
    "opensuse",
    "openwrt",
    "oracle",
    "plamo",
    "rhel",
    "rocky",
    "rockylinux",
    "slackware",
    "springdalelinux",
    "suse",
    "ubuntu",
    "voidlinux",
];

/// The config keys the conversion reads.
#[derive(Default, serde::Deserialize)]
struct Config<'a> {
    #[serde(borrow, rename = "user.runner-controller-id", default)]
    controller_id: Text<'a>,
    #[serde(borrow, rename = "user.runner-pool-id", default)]
    pool_id: Text<'a>,
    #[serde(borrow, rename = "image.os", default)]
    image_os: Text<'a>,
    #[serde(borrow, rename = "image.release", default)]
    image_release: Text<'a>,
    #[serde(borrow, rename = "user.os-type", default)]
    os_type: Text<'a>,
    #[serde(borrow, rename = "user.os-arch", default)]
    os_arch: Text<'a>,
}

#[derive(Default, serde::Deserialize)]
struct Address<'a> {
    #[serde(borrow, default)]
    family: Text<'a>,
    #[serde(borrow, default)]
    address: Text<'a>,
    #[serde(borrow, default)]
    scope: Text<'a>,
}

#[derive(Default, serde::Deserialize)]
struct Interface<'a> {
    #[serde(borrow, default)]
    addresses: List<Obj<Address<'a>>>,
}

/// Global addresses of every interface but `lo`, split by family, in server order.
#[derive(Default)]
struct Network<'a> {
    v4: Vec<Cow<'a, str>>,
    v6: Vec<Cow<'a, str>>,
}

struct NetworkVisitor;

impl<'de> Visitor<'de> for NetworkVisitor {
    type Value = Network<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of network interfaces")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut network = Network::default();
        while let Some(name) = map.next_key::<Text<'de>>()? {
            let Obj(interface) = map.next_value::<Obj<Interface<'de>>>()?;
            let Some(interface) = interface.filter(|_| name.raw() != Some("lo")) else {
                continue;
            };
            for Obj(address) in interface.addresses.0.unwrap_or_default() {
                let Some(Address {
                    family,
                    address: Text(Some(address)),
                    scope,
                }) = address
                else {
                    continue;
                };
                if address.is_empty() || scope.raw() != Some("global") {
                    continue;
                }
                let v6 = match family.raw() {
                    Some("inet") => false,
                    Some("inet6") => true,
                    _ => address.contains(':'),
                };
                if v6 {
                    network.v6.push(address);
                } else {
                    network.v4.push(address);
                }
            }
        }
        Ok(network)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Network<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(NetworkVisitor)
    }
}

#[derive(Default, serde::Deserialize)]
struct State<'a> {
    #[serde(borrow, default)]
    status: Text<'a>,
    #[serde(borrow, default)]
    network: Obj<Network<'a>>,
}

#[derive(Default, serde::Deserialize)]
struct Instance<'a> {
    #[serde(borrow, default)]
    name: Text<'a>,
    #[serde(borrow, default)]
    status: Text<'a>,
    #[serde(borrow, default)]
    architecture: Text<'a>,
    #[serde(borrow, default)]
    config: Obj<Config<'a>>,
    #[serde(borrow, default)]
    expanded_config: Obj<Config<'a>>,
    #[serde(borrow, default)]
    state: Obj<State<'a>>,
}

/// An LXD response envelope whose `metadata` is a `T` (or something else, reported).
#[derive(serde::Deserialize)]
struct Envelope<'a, T> {
    #[serde(borrow, rename = "type", default)]
    kind: Text<'a>,
    #[serde(borrow, default)]
    error: Text<'a>,
    #[serde(default)]
    metadata: T,
}

/// GARM's params.ProviderInstance, in its field order.
#[derive(Serialize)]
struct ProviderInstance<'s> {
    provider_id: &'s str,
    name: &'s str,
    os_type: &'s str,
    os_name: &'s str,
    os_version: &'s str,
    os_arch: &'s str,
    addresses: Vec<PublicAddress<'s>>,
    status: &'static str,
}

#[derive(Serialize)]
struct PublicAddress<'s> {
    address: &'s str,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl<'a> Instance<'a> {
    /// A config value: the instance's own, else the one profiles give it (expanded_config).
    fn config<'s>(&'s self, key: fn(&'s Config<'a>) -> &'s Text<'a>) -> Option<&'s str> {
        let own = self.config.0.as_ref().and_then(|c| key(c).get());
        own.or_else(|| self.expanded_config.0.as_ref().and_then(|c| key(c).get()))
    }

    fn belongs_to(&self, controller_id: &str, pool_id: Option<&str>) -> bool {
        self.config(|c| &c.controller_id) == Some(controller_id)
            && pool_id.is_none_or(|pool| self.config(|c| &c.pool_id) == Some(pool))
    }

    fn convert<'s>(&'s self, state: Option<&'s State<'a>>) -> ProviderInstance<'s> {
        let name = self.name.raw().unwrap_or_default();
        let image_os = self.config(|c| &c.image_os).unwrap_or_default();
        let os_type = match image_os.to_lowercase().as_str() {
            "windows" => "windows",
            os if LINUX_DISTROS.contains(&os) => "linux",
            _ => self.config(|c| &c.os_type).unwrap_or("unknown"),
        };
        let os_arch = self.config(|c| &c.os_arch).unwrap_or_else(|| {
            match self.architecture.raw().unwrap_or_default() {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                "armv7l" => "arm",
                other => other,
            }
        });
        let status = state.and_then(|s| s.status.get()).or(self.status.get());
        let network = state.and_then(|s| s.network.0.as_ref());
        let addresses = network
            .map(|n| n.v4.iter().chain(n.v6.iter()))
            .into_iter()
            .flatten()
            .map(|address| PublicAddress {
                address,
                kind: "public",
            })
            .collect();
        ProviderInstance {
            provider_id: name,
            name,
            os_type,
            os_name: image_os,
            os_version: self.config(|c| &c.image_release).unwrap_or_default(),
            os_arch,
            addresses,
            status: match status {
                Some("Running") => "running",
                Some("Stopped") => "stopped",
                Some("Error") => "error",
                _ => "unknown",
            },
        }
    }
}

/// Parse an LXD response envelope, insisting on a sync response with its metadata present.
fn metadata<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, Error> {
    let Object(Envelope::<'a, Option<T>> {
        kind,
        error,
        metadata,
    }) = serde_json::from_slice(body)
        .map_err(|e| Error::Response(format!("{what} is not an LXD response: {e}")))?;
    match kind.raw() {
        Some("error") => Err(Error::Response(format!(
            "{what} is an LXD error response: {}",
            error.raw().unwrap_or("no message")
        ))),
        None | Some("sync") => {
            metadata.ok_or_else(|| Error::Response(format!("{what} has no metadata")))
        }
        Some(other) => Err(Error::Response(format!(
            "{what} is an LXD {other:?} response, expected \"sync\""
        ))),
    }
}

/// The GARM instances of `controller_id` (and `pool_id`, if given) in a
/// `GET /1.0/instances?recursion=1|2` response, as a compact JSON array.
pub fn provider_instances(
    body: &[u8],
    controller_id: &str,
    pool_id: Option<&str>,
) -> Result<Vec<u8>, Error> {
    let instances: Vec<Obj<Instance<'_>>> = metadata(body, "the instance list")?;
    let converted: Vec<ProviderInstance<'_>> = instances
        .iter()
        .filter_map(|Obj(instance)| instance.as_ref())
        // An instance without a name cannot be addressed by GARM: leave it out.
        .filter(|i| i.name.get().is_some() && i.belongs_to(controller_id, pool_id))
        .map(|i| i.convert(i.state.0.as_ref()))
        .collect();
    Ok(serde_json::to_vec(&converted)?)
}

/// One ProviderInstance from `GET /1.0/instances/<name>` and, optionally, its `/state`.
pub fn provider_instance(instance: &[u8], state: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    let Object(instance): Object<Instance<'_>> = metadata(instance, "the instance")?;
    let state: Option<Object<State<'_>>> = match state {
        Some(body) => Some(metadata(body, "the instance state")?),
        None => None,
    };
    let embedded = instance.state.0.as_ref();
    let state = state.as_ref().map(|Object(s)| s).or(embedded);
    Ok(serde_json::to_vec(&instance.convert(state))?)
}

/// The global IPv4 addresses in an instance state object (the `metadata` of
/// `GET /1.0/instances/<name>/state`), every interface but `lo`, in server order: the one rule
/// for what counts as a runner's address, shared by GetInstance and the operator's `status`.
pub fn state_ipv4(state: &[u8]) -> Result<Vec<String>, Error> {
    let Obj(state): Obj<State<'_>> = serde_json::from_slice(state)
        .map_err(|e| Error::Response(format!("the instance state is not JSON: {e}")))?;
    let network = state.and_then(|s| s.network.0).unwrap_or_default();
    Ok(network.v4.into_iter().map(Cow::into_owned).collect())
}

/// Convert a GET /1.0/instances?recursion=1|2 response into a ProviderInstance JSON array.
#[pyfunction(name = "provider_instances")]
pub fn provider_instances_py<'py>(
    py: Python<'py>,
    body: &[u8],
    controller_id: &str,
    pool_id: Option<&str>,
) -> PyResult<Bound<'py, PyBytes>> {
    let json = py.detach(|| provider_instances(body, controller_id, pool_id))?;
    Ok(PyBytes::new(py, &json))
}

/// Convert GET /1.0/instances/<name> (+ optional /state) responses into ProviderInstance JSON.
#[pyfunction(name = "provider_instance")]
pub fn provider_instance_py<'py>(
    py: Python<'py>,
    instance: &[u8],
    state: Option<&[u8]>,
) -> PyResult<Bound<'py, PyBytes>> {
    let json = py.detach(|| provider_instance(instance, state))?;
    Ok(PyBytes::new(py, &json))
}

/// The global IPv4 addresses of an instance state object (see `state_ipv4`).
#[pyfunction(name = "state_ipv4")]
pub fn state_ipv4_py(py: Python<'_>, state: &[u8]) -> PyResult<Vec<String>> {
    Ok(py.detach(|| state_ipv4(state))?)
}

#[cfg(test)]
#[path = "instances_tests.rs"]
mod tests;

//! LXD instance JSON → GARM ProviderInstance JSON, bytes to bytes.
//!
//! A listing of thousands of instances goes from the response body to the filtered result
//! without creating a Python object per instance.

use std::collections::{BTreeMap, HashMap};

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde::{Deserialize, Serialize};

use crate::error::Error;

const TAG_CONTROLLER: &str = "user.runner-controller-id";
const TAG_POOL: &str = "user.runner-pool-id";
const TAG_OS_TYPE: &str = "user.os-type";
const TAG_OS_ARCH: &str = "user.os-arch";

// Values of `image.os` (lowercased) that name a Linux distribution in LXD image metadata.
const LINUX_DISTROS: &[&str] = &[
    "almalinux",
    "alpine",
    "amazonlinux",
    "archlinux",
    "busybox",
    "centos",
    "debian",
    "devuan",
    "fedora",
    "gentoo",
    "kali",
    "linux",
    "mint",
    "nixos",
    "openeuler",
    "opensuse",
    "oracle",
    "rhel",
    "rockylinux",
    "ubuntu",
    "voidlinux",
];

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(default = "Option::default")]
    metadata: Option<T>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Instance {
    name: String,
    status: String,
    architecture: String,
    config: HashMap<String, String>,
    state: Option<State>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct State {
    status: String,
    // Sorted by interface name: JSON object order is not kept by serde_json's map.
    network: Option<BTreeMap<String, Interface>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Interface {
    addresses: Vec<Address>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Address {
    family: String,
    address: String,
    scope: String,
}

#[derive(Serialize, Debug, PartialEq)]
struct ProviderAddress<'a> {
    address: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize, Debug, PartialEq)]
struct ProviderInstance<'a> {
    provider_id: &'a str,
    name: &'a str,
    os_type: &'a str,
    os_name: &'a str,
    os_version: &'a str,
    os_arch: &'a str,
    addresses: Vec<ProviderAddress<'a>>,
    status: &'static str,
}

fn tag<'a>(instance: &'a Instance, key: &str) -> &'a str {
    instance.config.get(key).map(String::as_str).unwrap_or("")
}

fn garm_status(lxd_status: &str) -> &'static str {
    match lxd_status {
        "Running" => "running",
        "Stopped" => "stopped",
        "Error" => "error",
        _ => "unknown",
    }
}

fn os_type(instance: &Instance) -> &str {
    let image_os = tag(instance, "image.os").to_ascii_lowercase();
    if LINUX_DISTROS.contains(&image_os.as_str()) {
        return "linux";
    }
    if image_os == "windows" {
        return "windows";
    }
    match tag(instance, TAG_OS_TYPE) {
        "" => "unknown",
        tagged => tagged,
    }
}

fn os_arch(instance: &Instance) -> &str {
    match tag(instance, TAG_OS_ARCH) {
        "" => match instance.architecture.as_str() {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "armv7l" => "arm",
            other => other,
        },
        tagged => tagged,
    }
}

fn addresses(state: Option<&State>) -> Vec<ProviderAddress<'_>> {
    let Some(network) = state.and_then(|s| s.network.as_ref()) else {
        return Vec::new();
    };
    let global = || {
        network
            .iter()
            .filter(|(name, _)| name.as_str() != "lo")
            .flat_map(|(_, iface)| iface.addresses.iter())
            .filter(|a| a.scope == "global" && !a.address.is_empty())
    };
    // IPv4 first: GARM shows the first address, and runners are reached over IPv4.
    let v4 = global().filter(|a| a.family == "inet");
    let v6 = global().filter(|a| a.family == "inet6");
    v4.chain(v6)
        .map(|a| ProviderAddress {
            address: &a.address,
            kind: "public",
        })
        .collect()
}

fn convert<'a>(instance: &'a Instance, state: Option<&'a State>) -> ProviderInstance<'a> {
    let state = state.or(instance.state.as_ref());
    let status = match state {
        Some(s) if !s.status.is_empty() => &s.status,
        _ => &instance.status,
    };
    ProviderInstance {
        provider_id: &instance.name,
        name: &instance.name,
        os_type: os_type(instance),
        os_name: tag(instance, "image.os"),
        os_version: tag(instance, "image.release"),
        os_arch: os_arch(instance),
        addresses: addresses(state),
        status: garm_status(status),
    }
}

/// Filter a `GET /1.0/instances?recursion=1|2` body to one controller (and pool) as JSON.
pub fn provider_instances(
    body: &[u8],
    controller_id: &str,
    pool_id: Option<&str>,
) -> Result<Vec<u8>, Error> {
    let envelope: Envelope<Vec<Instance>> = serde_json::from_slice(body)?;
    let instances = envelope.metadata.unwrap_or_default();
    let selected: Vec<ProviderInstance<'_>> = instances
        .iter()
        .filter(|i| tag(i, TAG_CONTROLLER) == controller_id)
        .filter(|i| pool_id.is_none_or(|pool| tag(i, TAG_POOL) == pool))
        .map(|i| convert(i, None))
        .collect();
    Ok(serde_json::to_vec(&selected)?)
}

/// Convert `GET /1.0/instances/<name>` (and optionally its `/state`) into ProviderInstance JSON.
pub fn provider_instance(instance: &[u8], state: Option<&[u8]>) -> Result<Vec<u8>, Error> {
    let envelope: Envelope<Instance> = serde_json::from_slice(instance)?;
    let instance = envelope
        .metadata
        .ok_or_else(|| Error::Response("LXD instance response has no metadata".into()))?;
    let state = match state {
        Some(raw) => serde_json::from_slice::<Envelope<State>>(raw)?.metadata,
        None => None,
    };
    Ok(serde_json::to_vec(&convert(&instance, state.as_ref()))?)
}

#[pyfunction(name = "provider_instances")]
#[pyo3(signature = (body, controller_id, pool_id))]
pub fn provider_instances_py<'py>(
    py: Python<'py>,
    body: &[u8],
    controller_id: &str,
    pool_id: Option<&str>,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = py.detach(|| provider_instances(body, controller_id, pool_id))?;
    Ok(PyBytes::new(py, &out))
}

#[pyfunction(name = "provider_instance")]
#[pyo3(signature = (instance, state))]
pub fn provider_instance_py<'py>(
    py: Python<'py>,
    instance: &[u8],
    state: Option<&[u8]>,
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &provider_instance(instance, state)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn listing() -> Vec<u8> {
        json!({"type": "sync", "metadata": [
            {"name": "a", "status": "Running", "architecture": "x86_64",
             "config": {"user.runner-controller-id": "c1", "user.runner-pool-id": "p1",
                        "image.os": "Ubuntu", "image.release": "jammy"},
             "state": {"status": "Running", "network": {
                 "lo": {"addresses": [{"family": "inet", "address": "127.0.0.1", "scope": "local"}]},
                 "eth0": {"addresses": [
                     {"family": "inet6", "address": "fd42::1", "scope": "global"},
                     {"family": "inet6", "address": "fe80::1", "scope": "link"},
                     {"family": "inet", "address": "10.0.0.5", "scope": "global"}]}}}},
            {"name": "b", "status": "Stopped", "architecture": "aarch64",
             "config": {"user.runner-controller-id": "c1", "user.runner-pool-id": "p2",
                        "user.os-type": "linux"}},
            {"name": "c", "status": "Frozen", "architecture": "x86_64",
             "config": {"user.runner-controller-id": "c2", "user.runner-pool-id": "p1"}},
            {"name": "d", "status": "Running", "architecture": "x86_64", "config": {}}
        ]})
        .to_string()
        .into_bytes()
    }

    fn parse(out: Vec<u8>) -> Value {
        serde_json::from_slice(&out).expect("output is JSON")
    }

    #[test]
    fn filters_by_controller_and_pool() {
        let all = parse(provider_instances(&listing(), "c1", None).unwrap());
        let names: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let pool = parse(provider_instances(&listing(), "c1", Some("p2")).unwrap());
        assert_eq!(pool.as_array().unwrap().len(), 1);
        assert_eq!(pool[0]["name"], "b");
        let none = parse(provider_instances(&listing(), "nobody", None).unwrap());
        assert_eq!(none, json!([]));
    }

    #[test]
    fn maps_status_os_and_global_addresses_ipv4_first() {
        let all = parse(provider_instances(&listing(), "c1", None).unwrap());
        assert_eq!(
            all[0],
            json!({"provider_id": "a", "name": "a", "os_type": "linux", "os_name": "Ubuntu",
                   "os_version": "jammy", "os_arch": "amd64", "status": "running",
                   "addresses": [{"address": "10.0.0.5", "type": "public"},
                                 {"address": "fd42::1", "type": "public"}]})
        );
        assert_eq!(all[1]["status"], "stopped");
        assert_eq!(all[1]["os_type"], "linux");
        assert_eq!(all[1]["os_arch"], "arm64");
        assert_eq!(all[1]["addresses"], json!([]));
        let other = parse(provider_instances(&listing(), "c2", None).unwrap());
        assert_eq!(other[0]["status"], "unknown");
        assert_eq!(other[0]["os_type"], "unknown");
    }

    #[test]
    fn single_instance_uses_the_separate_state() {
        let inst = json!({"type": "sync", "metadata": {"name": "x", "status": "Stopped",
            "architecture": "armv7l", "config": {"user.os-arch": "arm"}}});
        let state = json!({"type": "sync", "metadata": {"status": "Running", "network": {
            "eth0": {"addresses": [{"family": "inet", "address": "10.1.1.1", "scope": "global"}]}}}});
        let out = parse(
            provider_instance(
                inst.to_string().as_bytes(),
                Some(state.to_string().as_bytes()),
            )
            .unwrap(),
        );
        assert_eq!(out["status"], "running");
        assert_eq!(out["os_arch"], "arm");
        assert_eq!(out["addresses"][0]["address"], "10.1.1.1");
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        assert!(provider_instances(b"{", "c", None).is_err());
        assert!(provider_instances(b"[1, 2]", "c", None).is_err());
        assert!(provider_instance(b"{\"metadata\": null}", None).is_err());
        let empty = parse(provider_instances(b"{\"metadata\": null}", "c", None).unwrap());
        assert_eq!(empty, json!([]));
    }
}

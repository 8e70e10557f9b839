//! Conversion tests on fixtures captured from LXD 5.0.2 (testdata/lxd) and on odd shapes.

use serde_json::{json, Value};

use super::*;

const C1: &str = "2f5e8a1c-0000-4000-8000-000000000001";
const C2: &str = "2f5e8a1c-0000-4000-8000-000000000002";
const P1: &str = "7d0c3b9e-0000-4000-8000-0000000000aa";
const P2: &str = "7d0c3b9e-0000-4000-8000-0000000000bb";

const LIST2: &[u8] = include_bytes!("../../testdata/lxd/instances-recursion2.json");
const LIST1: &[u8] = include_bytes!("../../testdata/lxd/instances-recursion1.json");
const INSTANCE: &[u8] = include_bytes!("../../testdata/lxd/instance.json");
const RUNNING: &[u8] = include_bytes!("../../testdata/lxd/instance-state-running.json");
const STOPPED: &[u8] = include_bytes!("../../testdata/lxd/instance-state-stopped.json");
const NOT_FOUND: &[u8] = include_bytes!("../../testdata/lxd/error-404.json");

fn json_of(result: Result<Vec<u8>, Error>) -> Value {
    match result {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("output is JSON"),
        Err(err) => json!({ "error": err.to_string() }),
    }
}

fn list(body: &[u8], controller: &str, pool: Option<&str>) -> Value {
    json_of(provider_instances(body, controller, pool))
}

fn names(value: &Value) -> Vec<String> {
    let items = value.as_array().cloned().unwrap_or_default();
    items.iter().map(|i| i["name"].to_string()).collect()
}

fn fixture_one() -> Value {
    json!({
        "provider_id": "garm-fixture-1", "name": "garm-fixture-1", "os_type": "linux",
        "os_name": "busybox", "os_version": "1.35", "os_arch": "amd64",
        "addresses": [
            {"address": "10.161.0.35", "type": "public"},
            {"address": "10.162.0.7", "type": "public"},
            {"address": "fd42:7c1e:94c1:2a7a:216:3eff:feae:b121", "type": "public"},
            {"address": "fd42:aaaa::5", "type": "public"},
        ],
        "status": "running",
    })
}

#[test]
fn recursion2_listing_converts_the_controllers_instances() {
    let all = list(LIST2, C1, None);
    assert_eq!(
        all,
        json!([
            fixture_one(),
            {"provider_id": "garm-fixture-2", "name": "garm-fixture-2", "os_type": "linux",
             "os_name": "busybox", "os_version": "1.35", "os_arch": "arm64", "addresses": [],
             "status": "stopped"},
            {"provider_id": "garm-fixture-4", "name": "garm-fixture-4", "os_type": "windows",
             "os_name": "Windows", "os_version": "2022", "os_arch": "amd64", "addresses": [],
             "status": "error"},
        ])
    );
}

#[test]
fn pool_filter_narrows_the_listing() {
    assert_eq!(
        names(&list(LIST2, C1, Some(P1))),
        ["\"garm-fixture-1\"", "\"garm-fixture-4\""]
    );
    assert_eq!(names(&list(LIST2, C1, Some(P2))), ["\"garm-fixture-2\""]);
    assert_eq!(names(&list(LIST2, C2, None)), ["\"garm-fixture-3\""]);
    assert_eq!(list(LIST2, "someone-else", None), json!([]));
    assert_eq!(list(LIST2, "", None), json!([]));
    assert_eq!(list(LIST2, C1, Some("")), json!([]));
}

#[test]
fn recursion1_listing_has_status_but_no_addresses() {
    let all = list(LIST1, C1, Some(P1));
    let mut expected = fixture_one();
    expected["addresses"] = json!([]);
    assert_eq!(all, json!([expected]));
}

#[test]
fn single_instance_takes_status_and_addresses_from_its_state() {
    let running = json_of(provider_instance(INSTANCE, Some(RUNNING)));
    assert_eq!(running["status"], "running");
    assert_eq!(
        running["addresses"],
        json!([{"address": "10.161.0.35", "type": "public"}])
    );
    let stopped = json_of(provider_instance(INSTANCE, Some(STOPPED)));
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(stopped["addresses"], json!([]));
    let alone = json_of(provider_instance(INSTANCE, None));
    assert_eq!(alone["status"], "running");
    assert_eq!(alone["addresses"], json!([]));
    assert_eq!(alone["name"], "garm-fixture-1");
}

#[test]
fn state_without_status_falls_back_to_the_instance_status() {
    // The shape of recursion=2;fields=state.network on LXD >= 6.7.
    let body = json!({"type": "sync", "metadata": [
        {"name": "n", "status": "Stopped", "config": {"user.runner-controller-id": "c"},
         "state": {"network": {"eth0": {"addresses": [
             {"family": "inet", "address": "192.0.2.1", "scope": "global"}]}}}}
    ]});
    let out = list(body.to_string().as_bytes(), "c", None);
    assert_eq!(out[0]["status"], "stopped");
    assert_eq!(out[0]["addresses"][0]["address"], "192.0.2.1");
}

#[test]
fn odd_fields_read_as_absent() {
    let body = json!({"type": "sync", "metadata": [
        "/1.0/instances/a-url-not-an-object",
        {"status": "Running", "config": {"user.runner-controller-id": "c"}},
        {"name": "odd", "status": 3, "architecture": ["x"],
         "config": {"user.runner-controller-id": "c", "image.os": 7, "user.os-arch": null,
                    "image.release": {"a": 1}},
         "state": {"status": null, "network": {
             "lo": {"addresses": [{"family": "inet", "address": "10.0.0.9", "scope": "global"}]},
             "eth0": "down",
             "eth1": {"addresses": "none"},
             "eth2": {"addresses": [null, 1, {"address": "", "scope": "global"},
                                    {"address": "2001:db8::1", "scope": "global"},
                                    {"address": "198.51.100.4", "scope": "global"}]}}}},
        {"name": "nostate", "config": {"user.runner-controller-id": "c"}, "state": []},
        {"name": "badconfig", "config": ["user.runner-controller-id", "c"]},
    ]});
    let out = list(body.to_string().as_bytes(), "c", None);
    assert_eq!(
        out,
        json!([
            {"provider_id": "odd", "name": "odd", "os_type": "unknown", "os_name": "",
             "os_version": "", "os_arch": "", "status": "unknown",
             "addresses": [{"address": "198.51.100.4", "type": "public"},
                           {"address": "2001:db8::1", "type": "public"}]},
            {"provider_id": "nostate", "name": "nostate", "os_type": "unknown", "os_name": "",
             "os_version": "", "os_arch": "", "status": "unknown", "addresses": []},
        ])
    );
}

#[test]
fn escaped_strings_and_profile_config_are_read() {
    let body = br#"{"metadata": [{"name": "caf\u00e9", "status": "Running",
        "architecture": "riscv64",
        "config": {"user.runner-controller-id": "c\/1"},
        "expanded_config": {"image.os": "UBUNTU", "image.release": "noble",
                            "user.runner-controller-id": "other"}}]}"#;
    let out = list(body, "c/1", None);
    assert_eq!(out[0]["name"], "café");
    assert_eq!(out[0]["os_type"], "linux");
    assert_eq!(out[0]["os_name"], "UBUNTU");
    assert_eq!(out[0]["os_version"], "noble");
    assert_eq!(out[0]["os_arch"], "riscv64");
}

#[test]
fn bad_envelopes_are_response_errors() {
    let cases: [(&[u8], &str); 7] = [
        (b"{", "the instance list is not an LXD response: EOF"),
        (
            b"[1, 2]",
            "the instance list is not an LXD response: invalid type: sequence",
        ),
        (b"{\"metadata\": null}", "the instance list has no metadata"),
        (
            b"{\"metadata\": {}}",
            "the instance list is not an LXD response: invalid type: map",
        ),
        (
            NOT_FOUND,
            "the instance list is an LXD error response: Instance not found",
        ),
        (
            b"{\"type\": \"async\", \"metadata\": []}",
            "the instance list is an LXD \"async\" response",
        ),
        (b"", "the instance list is not an LXD response: EOF"),
    ];
    for (body, message) in cases {
        let result = provider_instances(body, "c", None);
        assert!(
            matches!(&result, Err(Error::Response(m)) if m.starts_with(message)),
            "{message}: {:?}",
            result.map_err(|e| e.to_string())
        );
    }
}

#[test]
fn single_instance_needs_objects() {
    let message = |r: Result<Vec<u8>, Error>| r.map_err(|e| e.to_string()).err();
    assert_eq!(
        message(provider_instance(b"{\"metadata\": [\"a\"]}", None)),
        Some("the instance is not an LXD response: invalid type: sequence, expected a JSON object at line 1 column 13".into())
    );
    assert_eq!(
        message(provider_instance(INSTANCE, Some(NOT_FOUND))),
        Some("the instance state is an LXD error response: Instance not found".into())
    );
    assert_eq!(
        message(provider_instance(INSTANCE, Some(b"{\"metadata\": null}"))),
        Some("the instance state has no metadata".into())
    );
}

#[test]
fn state_ipv4_is_the_global_ipv4_of_every_interface_but_lo() {
    let state = json!({"status": "Running", "network": {
        "lo": {"addresses": [{"family": "inet", "address": "127.0.0.1", "scope": "global"}]},
        "eth0": {"addresses": [
            {"family": "inet", "address": "10.1.0.5", "scope": "global"},
            {"family": "inet", "address": "169.254.0.1", "scope": "link"},
            {"family": "inet6", "address": "fd42::5", "scope": "global"},
            {"address": "10.1.0.6", "scope": "global"},
            {"family": "inet", "address": "", "scope": "global"}
        ]},
        "eth1": null
    }});
    let body = serde_json::to_vec(&state).unwrap();
    assert_eq!(state_ipv4(&body).unwrap(), ["10.1.0.5", "10.1.0.6"]);
    assert_eq!(state_ipv4(b"null").unwrap(), Vec::<String>::new());
    assert_eq!(state_ipv4(b"{}").unwrap(), Vec::<String>::new());
    assert!(state_ipv4(b"{").is_err());
}

#[test]
fn state_ipv4_of_a_captured_running_state_matches_get_instance() {
    let Value::Object(envelope) = serde_json::from_slice(RUNNING).unwrap() else {
        panic!("fixture is an object")
    };
    let state = serde_json::to_vec(&envelope["metadata"]).unwrap();
    let got = json_of(provider_instance(INSTANCE, Some(RUNNING)));
    let v4: Vec<String> = got["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["address"].as_str().unwrap().to_string())
        .filter(|a| !a.contains(':'))
        .collect();
    assert_eq!(state_ipv4(&state).unwrap(), v4);
    assert!(!v4.is_empty());
}

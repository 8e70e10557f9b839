"""Secrets stay out of stderr on every failure path; pool templates reach only their own data."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from reliability.faultproxy import Fault, FaultProxy
from reliability.harness import Outcome, garm_env, one_line_failure, run, socket_config, tagged
from reliability.tlsenv import self_signed

pytestmark = pytest.mark.reliability
pytest_plugins = ["reliability.fixtures"]

MARK = uuid.uuid4().hex[:12]
SECRETS = {
    "instance-token": f"tok.{MARK}.instance-token-value",
    "temp-download-token": f"dl-{MARK}-download-token-value",
    "jit-credentials": f"jit-{MARK}-encoded-jit-config",
    "registration-token": f"AAREG{MARK}REGISTRATIONTOKEN",
    "proxy-password": f"pw{MARK}proxypassword",
    "pre-install-script": f"echo script-{MARK}-contents",
}
# Values of variables an operator passed through to the provider (GARM can whitelist names).
ENV_SECRETS = {"GARM_OPERATOR_TOKEN": f"env-{MARK}-operator-token", "VAULT_TOKEN": f"hvs.{MARK}"}
PYTHON_REPR = re.compile(r"<[a-zA-Z_.]+ object at 0x|<class '|<function |GoStruct\(|\{'|__dict__")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real PEM certificate to pass as GARM's CA bundle."""
    return self_signed(tmp_path_factory.mktemp("ca"), "garm-secret-ca", ca=True).cert.read_bytes()


@pytest.fixture
def secret_boot(bootstrap: Callable[..., dict[str, Any]], ca_pem: bytes) -> dict[str, Any]:
    """A bootstrap payload with a recognisable secret in every sensitive field."""
    boot = bootstrap(f"garm-sec-{uuid.uuid4().hex[:8]}")
    boot["instance-token"] = SECRETS["instance-token"]
    for tool in boot["tools"]:
        tool["temp_download_token"] = SECRETS["temp-download-token"]
    boot["ca-cert-bundle"] = _b64(ca_pem)
    boot["proxy_config"] = {
        "http_proxy": f"http://garm:{SECRETS['proxy-password']}@proxy.example:3128",
        "https_proxy": f"http://garm:{SECRETS['proxy-password']}@proxy.example:3128",
        "no_proxy": "localhost",
    }
    boot["extra_specs"] = {
        "extra_context": {
            "jit_config": SECRETS["jit-credentials"],
            "registration_token": SECRETS["registration-token"],
        },
        "pre_install_scripts": {"01-setup": _b64(SECRETS["pre-install-script"].encode())},
    }
    return boot


def _assert_no_secret(text: str, boot: dict[str, Any], ca_pem: bytes) -> None:
    """Fail when text carries any planted secret, the CA bundle or user data."""
    for what, value in SECRETS.items():
        assert value not in text, f"{what} leaked: {text!r}"
    for what, value in ENV_SECRETS.items():
        assert value not in text, f"environment variable {what} leaked: {text!r}"
    assert boot["ca-cert-bundle"][:40] not in text, text
    body = b"".join(ca_pem.splitlines()[1:-1]).decode()
    assert body[:40] not in text and body[-40:] not in text, text
    assert "#cloud-config" not in text and "write_files" not in text, text


def _failing_boots(boot: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], int]]:
    """Variants of boot that each fail before or at LXD, with the exit code GARM expects."""
    specs = boot["extra_specs"]

    def variant(**changes: Any) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(boot))
        copy.update(changes)
        return copy

    def spec_variant(**changes: Any) -> dict[str, Any]:
        return variant(extra_specs={**specs, **changes})

    yield "bad-name", variant(name="no_underscores_allowed"), 1
    yield "bad-arch", variant(arch="sparc"), 1
    yield "no-tools", variant(tools=[]), 1
    yield "bad-ca", variant(**{"ca-cert-bundle": _b64(b"-----BEGIN CERTIFICATE-----\nx")}), 1
    yield "bad-proxy", variant(proxy_config={"http_proxy": 5}), 1
    yield "bad-jit-flag", variant(jit_config_enabled="true"), 1
    yield "bad-script", spec_variant(pre_install_scripts={"01": SECRETS["registration-token"]}), 1
    yield "bad-context", spec_variant(extra_context={"jit": [SECRETS["jit-credentials"]]}), 1
    for index, template in enumerate(
        [
            "{{ .CallbackToken.Foo }}",
            "{{ index .CallbackToken 9999 }}",
            "{{ slice .CallbackToken 9 2 }}",
            "{{ call .CallbackToken }}",
            "{{ if eq .CallbackToken 1 }}{{ end }}",
            "{{ .ExtraContext.registration_token.Value }}",
            '{{ index .ExtraContext "jit_config" | len | printf "%s" | eq 1 }}',
            "{{ template .CallbackToken }}",
            '{{ range 100000 }}{{ printf "%s%0500d" $.CallbackToken 0 }}{{ end }}',
        ]
    ):
        yield f"template-{index}", spec_variant(runner_install_template=template), 1


def _create(provider_bin: str, config: Path, ctl: str, boot: dict[str, Any]) -> Outcome:
    env = garm_env("CreateInstance", config, ctl, pool_id=boot["pool_id"]) | ENV_SECRETS
    return run(provider_bin, env, json.dumps(boot).encode(), timeout=90)


def test_input_failures_never_show_secrets(
    provider_bin: str,
    direct_config: Path,
    secret_boot: dict[str, Any],
    ca_pem: bytes,
    lxd_client: Any,
    controller: str,
) -> None:
    for case, boot, code in _failing_boots(secret_boot):
        outcome = _create(provider_bin, direct_config, controller, boot)
        one_line_failure(outcome, code)
        try:
            _assert_no_secret(outcome.error, secret_boot, ca_pem)
        except AssertionError as exc:
            raise AssertionError(f"{case}: {exc}") from None
    # A 10 MB payload full of secrets is refused without echoing it.
    big = json.dumps({**secret_boot, "pad": SECRETS["instance-token"] * 300_000}).encode()
    env = garm_env("CreateInstance", direct_config, controller) | ENV_SECRETS
    outcome = run(provider_bin, env, big)
    one_line_failure(outcome)
    _assert_no_secret(outcome.error, secret_boot, ca_pem)
    assert tagged(lxd_client, controller) == {}


# LXD-side failures: (fault, method, path pattern)
LXD_FAILURES = [
    (Fault.ERROR_500, "POST", r"^/1\.0/instances(\?|$)"),
    (Fault.HANG, "POST", r"^/1\.0/instances(\?|$)"),
    (Fault.TRUNCATE, "POST", r"^/1\.0/instances(\?|$)"),
    (Fault.INVALID_JSON, "POST", r"^/1\.0/instances(\?|$)"),
    (Fault.FAIL_OPERATION, "GET", r"/wait"),
    (Fault.GO_DOWN, "PUT", r"/state"),
]


def test_lxd_failures_never_show_secrets(
    provider_bin: str,
    proxy_config: Path,
    direct_config: Path,
    fault_proxy: FaultProxy,
    secret_boot: dict[str, Any],
    ca_pem: bytes,
    lxd_client: Any,
    controller: str,
    tmp_path: Path,
) -> None:
    for fault, method, path in LXD_FAILURES:
        fault_proxy.clear()
        fault_proxy.add(fault, method, path, times=1)
        # A fresh name each time: the instance a failed create left is the fixture's to remove.
        boot = {**secret_boot, "name": f"garm-sec-{uuid.uuid4().hex[:8]}"}
        outcome = _create(provider_bin, proxy_config, controller, boot)
        one_line_failure(outcome)
        _assert_no_secret(outcome.error, secret_boot, ca_pem)
    fault_proxy.clear()
    # The daemon missing altogether, and a duplicate name (exit 31).
    gone = socket_config(tmp_path / "gone.toml", str(tmp_path / "nowhere.socket"))
    outcome = _create(provider_bin, gone, controller, secret_boot)
    one_line_failure(outcome)
    _assert_no_secret(outcome.error, secret_boot, ca_pem)
    assert _create(provider_bin, direct_config, controller, secret_boot).returncode == 0
    duplicate = _create(provider_bin, direct_config, controller, secret_boot)
    one_line_failure(duplicate, 31)
    _assert_no_secret(duplicate.error, secret_boot, ca_pem)


# Templates probing for anything beyond their data; none may fail with a traceback.
PROBES = [
    "{{ .__class__ }}",
    "{{ .__class__.__mro__ }}",
    '{{ index . "x" }}',
    '{{ index . "__dict__" }}',
    '{{ printf "%v" . }}',
    '{{ printf "%+v %#v %T" . . . }}',
    "{{ print . }}{{ println .ExtraContext }}{{ js . }}{{ html . }}{{ urlquery . }}",
    '{{ printf "%v" .ExtraContext }}{{ index .ExtraContext "__class__" }}',
    "{{ .ExtraContext.__class__ }}",
    "{{ .FileName.__len__ }}",
    "{{ call .FileName }}",
    '{{ readFile "/etc/passwd" }}',
    '{{ env "VAULT_TOKEN" }}',
    '{{ template "/etc/passwd" }}',
    '{{ define "x" }}{{ end }}{{ template "../../../etc/passwd" . }}',
    "{{ range $k, $v := . }}{{ $k }}{{ end }}",
    "{{ $ }}{{ $.ExtraContext }}",
    '{{ printf "%p %x %s" . . . }}',
]


@pytest.mark.parametrize("probe", PROBES)
def test_templates_reach_only_their_data(provider_bin: str, probe: str) -> None:
    boot = {
        "name": "garm-probe",
        "os_type": "linux",
        "arch": "amd64",
        "instance-token": "tok",
        "tools": [
            {
                "os": "linux",
                "architecture": "x64",
                "download_url": "https://example.com/r.tgz",
                "filename": "r.tgz",
            }
        ],
        "extra_specs": {"runner_install_template": probe, "extra_context": {"k": "v"}},
    }
    outcome = run(provider_bin, ENV_SECRETS, json.dumps(boot).encode(), args=("userdata",))
    text = outcome.error
    if outcome.returncode == 0:
        text += _rendered_files(outcome.stdout)
    else:
        one_line_failure(outcome)
    for value in ENV_SECRETS.values():
        assert value not in text, text
    assert "root:x:0:0" not in text, text  # /etc/passwd
    assert not PYTHON_REPR.search(text), text
    assert "Traceback" not in text


def _rendered_files(user_data: bytes) -> str:
    """The decoded contents of every file the cloud-config writes."""
    document = yaml.safe_load(user_data)
    return "\n".join(
        base64.b64decode(item["content"]).decode(errors="replace")
        for item in document.get("write_files") or []
    )

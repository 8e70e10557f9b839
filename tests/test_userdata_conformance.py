"""User data against the Go reference (testdata/conformance), plus the project's own additions.

Conformance follows testdata/conformance/README.md: cloud-config documents are compared as YAML
data, key order included; the default install script is a placeholder in the reference, and a
case that sets runner_install_template must give a byte-identical /install_runner.sh.

One documented deviation: on Linux a proxy_config value that would change the reference's boot
script (it writes each value unescaped between double quotes) is refused; the p* cases that
expect a refusal say so, and test_proxy_* below check the rule and what the script does.
"""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from userdata_cases import CONFORMANCE, INSTALL_SCRIPT, build, install_script, load_case

from garm_provider_lxd.errors import InputError, ProviderError, TemplateError
from garm_provider_lxd.userdata import PROXY_KEYS, PS1_HEADER

CASES = sorted(path.stem for path in (CONFORMANCE / "cases").glob("*.json"))
PLACEHOLDER = "<default install script>"

# Words of the reference's error that a reader needs (the wording itself need not match).
ERROR_GIST = {
    "e01_no_tools_for_arch": "failed to find tools for OS linux and arch arm64",
    "e02_invalid_ca_bundle": "failed to parse CA cert bundle",
    "e03_unsupported_os": "unsupported OS type: freebsd",
    "e04_specs_additional_property": "no_such_spec",
    "e05_specs_wrong_type": "disable_updates",
    "e06_specs_packages_not_strings": "extra_packages",
    "e07_unsupported_arch": "architecture i386 is not supported",
    "e13_pre_install_not_base64": "pre_install_scripts.x",
    # The reference writes these; this provider refuses them (the README's deliberate difference).
    **{
        name: "bootstrap: proxy_config.http_proxy: holds "
        for name in (
            "p07_spaces",
            "p08_double_quotes",
            "p11_backticks",
            "p12_newlines",
            "p20_backslash_percent_braces",
            "p22_whitespace_only_http",
            "p25_tabs_semicolons",
        )
    },
}


def test_every_case_is_driven() -> None:
    families = {name[0] for name in CASES}
    assert families == {"c", "e", "t", "s", "p"}
    assert len(CASES) >= 70


@pytest.mark.parametrize("name", CASES)
def test_case_conforms(name: str) -> None:
    case = load_case(name)
    error_file = CONFORMANCE / "cases" / f"{name}.error"
    if error_file.exists():
        with pytest.raises(ProviderError) as info:
            build(case)
        assert type(info.value) in (InputError, TemplateError)
        message = str(info.value)
        assert message.strip() and "\n" not in message
        assert ERROR_GIST.get(name, "") in message
        return
    expected_text = (CONFORMANCE / "cases" / f"{name}.userdata").read_text()
    output = build(case)
    if expected_text.startswith(PS1_HEADER):
        lines = output.decode("utf-8").split("\n")
        assert lines[0] == PS1_HEADER
        assert lines[1] != PS1_HEADER
        return
    assert output.startswith(b"#cloud-config\n")
    actual = yaml.safe_load(output)
    expected = yaml.safe_load(expected_text)
    script = install_script(actual)
    expected_script = next(f for f in expected["write_files"] if f["path"] == INSTALL_SCRIPT)
    if expected_script["content"] == PLACEHOLDER:
        assert "runner_install_template" not in case["extra_specs"]
        assert script.startswith(b"#!/bin/bash\n")
        for entry in actual["write_files"]:
            if entry["path"] == INSTALL_SCRIPT:
                entry["content"] = PLACEHOLDER
    else:
        assert script == base64.b64decode(expected_script["content"])
    assert actual == expected
    assert key_order(actual) == key_order(expected)


def key_order(value: object, at: str = "") -> list[str]:
    """Every mapping key under value, in document order, as a dotted path."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in [f"{at}.{k}", *key_order(v, f"{at}.{k}")]]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in key_order(item, f"{at}[{i}]")]
    return []


def test_plain_text_template_gives_the_same_output_as_base64() -> None:
    case = load_case("s01_seed_example_base64")
    seed = (CONFORMANCE / "seed_runner_install_template.txt").read_text()
    assert base64.b64decode(case["extra_specs"]["runner_install_template"]).decode() == seed
    plain = json.loads(json.dumps(case))
    plain["extra_specs"]["runner_install_template"] = seed
    assert build(plain) == build(case)


# -- the proxy bootcmd -----------------------------------------------------------------------

SCRIPT_START = "\nif [ -d "
# What each package manager's branch of the script needs to find under /etc.
DISTROS = {
    "apt": {"etc/apt/apt.conf.d/": ""},
    "dnf": {"etc/dnf/dnf.conf": "[main]\ngpgcheck=1\n"},
    "yum": {"etc/yum.conf": "[main]\ngpgcheck=1\n"},
    "zypper": {"etc/zypp/": "", "etc/sysconfig/": ""},
}
# The characters the script cannot hold (README: the deliberate difference), C1 and Unicode
# spaces included.
REFUSED = [
    "$", "`", '"', "\\", " ", "\t", "\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\x9b", "\xa0",
    "\u2028", "\u3000",
]  # fmt: skip


def run_bootcmd(document: dict[str, Any], distro: str, root: Path) -> dict[str, str]:
    """Run the bootcmd with sh, as cloud-init does, against a scratch /etc laid out for distro."""
    for path, text in DISTROS[distro].items():
        target = root / path
        if path.endswith("/"):
            target.mkdir(parents=True)
        else:
            target.parent.mkdir(parents=True)
            target.write_text(text)
    [command] = document["bootcmd"]
    assignments, script = command.split(SCRIPT_START, 1)
    local = assignments + SCRIPT_START + script.replace("/etc/", f"{root}/etc/")
    # Not check=True: the reference's script ends with `[ -n "$X" ] && printf ...`, so it
    # exits 1 when the last variable it tests is empty (cloud-init then logs bootcmd as failed).
    subprocess.run(["sh", "-c", local], check=False, env={"PATH": "/usr/bin:/bin"})
    return {
        str(path.relative_to(root)): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def expected_files(distro: str, proxy: dict[str, str]) -> dict[str, str]:
    """Every file under the scratch /etc after the reference's script ran with these settings."""
    http, https, no_proxy = (proxy.get(key, "") for key in PROXY_KEYS)
    if distro == "apt":
        apt = "".join(
            f'Acquire::{scheme}::Proxy "{value}";\n'
            for scheme, value in (("http", http), ("https", https))
            if value
        )
        return {"etc/apt/apt.conf.d/95garm-proxy": apt}
    if distro in ("dnf", "yum"):
        [(path, text)] = DISTROS[distro].items()
        return {path: f"{text}proxy={http or https}\n"}
    lines = [("PROXY_ENABLED", "yes"), ("HTTP_PROXY", http), ("HTTPS_PROXY", https)]
    lines.append(("NO_PROXY", no_proxy))
    return {"etc/sysconfig/proxy": "".join(f'{k}="{v}"\n' for k, v in lines if v)}


def proxy_case(proxy: dict[str, str], os_type: str = "linux") -> dict[str, Any]:
    case = load_case("c01_minimal_jit")
    case["os_type"] = os_type
    case["proxy_config"] = {key: proxy.get(key, "") for key in PROXY_KEYS}
    return case


@pytest.mark.parametrize("distro", list(DISTROS))
@pytest.mark.parametrize(
    "name", ["p01_http_only", "p02_https_only", "p03_http_https_no_proxy", "p09_single_quotes"]
)
def test_proxy_bootcmd_configures_apt_dnf_yum_or_zypper(
    name: str, distro: str, tmp_path: Path
) -> None:
    case = load_case(name)
    proxy = {k: v for k, v in case["proxy_config"].items() if v}
    written = run_bootcmd(yaml.safe_load(build(case)), distro, tmp_path)
    assert written == expected_files(distro, proxy)


ACCEPTED = st.text(
    st.characters(exclude_categories=["Cs"]).filter(
        lambda c: c.isprintable() and c not in '$`"\\ '
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(http=ACCEPTED.filter(bool), https=ACCEPTED, no_proxy=ACCEPTED)
def test_proxy_values_that_are_accepted_reach_the_config_files_unchanged(
    http: str, https: str, no_proxy: str
) -> None:
    proxy = {"http_proxy": http, "https_proxy": https, "no_proxy": no_proxy}
    document = yaml.safe_load(build(proxy_case(proxy)))
    values_set = {k: v for k, v in proxy.items() if v}
    for distro in ("apt", "dnf", "zypper"):
        with tempfile.TemporaryDirectory() as scratch:
            written = run_bootcmd(document, distro, Path(scratch))
        assert written == expected_files(distro, values_set)


@pytest.mark.parametrize("bad", REFUSED)
@pytest.mark.parametrize("key", PROXY_KEYS)
def test_proxy_values_that_would_change_the_boot_script_are_refused(key: str, bad: str) -> None:
    case = load_case("p03_http_https_no_proxy")
    case["proxy_config"][key] = f"http://garm:s3cret@p{bad}x:1"
    with pytest.raises(InputError) as info:
        build(case)
    message = str(info.value)
    assert message.startswith(f"bootstrap: proxy_config.{key}: holds {bad!a}; the boot script")
    assert message.endswith("(a proxy URL percent-encodes them)")
    assert "\n" not in message
    assert "s3cret" not in message


def test_no_proxy_alone_is_checked_too_as_the_install_script_writes_it() -> None:
    case = proxy_case({"no_proxy": "localhost\nLD_PRELOAD=/tmp/x.so"})
    with pytest.raises(InputError, match=r"^bootstrap: proxy_config\.no_proxy: holds '\\n'; "):
        build(case)


def test_windows_ignores_proxy_config_as_the_reference_does() -> None:
    odd = {"http_proxy": "http://p:1\n`id`", "https_proxy": "$(id)", "no_proxy": '"\\'}
    custom = load_case("p24_windows_template")
    plain = build(custom)
    custom["proxy_config"] = odd
    assert build(custom) == plain == b"#ps1_sysnative\n" + b'Write-Host "garm-7f3c9a1b2d4e"\n'
    assert build(proxy_case(odd, "windows")).startswith(b"#ps1_sysnative\n")


# -- the CA bundle ---------------------------------------------------------------------------


def ca_case(pem: str) -> dict[str, Any]:
    case = load_case("c01_minimal_jit")
    case["ca-cert-bundle"] = base64.b64encode(pem.encode()).decode()
    return case


def reference_pem() -> str:
    return base64.b64decode(load_case("c07_ca_bundle")["ca-cert-bundle"]).decode()


def test_ca_bundle_with_several_certificates_is_trusted_as_given() -> None:
    bundle = "# issuer: example\n" + reference_pem() + "\n" + reference_pem()
    document = yaml.safe_load(build(ca_case(bundle)))
    assert document["ca-certs"] == {"remove-defaults": False, "trusted": [bundle]}


@pytest.mark.parametrize(
    "mangle",
    [
        lambda pem: pem.replace("CERTIFICATE", "PRIVATE KEY"),
        lambda pem: pem.replace("MIIBiTCC", "MIIBiTCD"),
        lambda pem: pem.replace("edlyP8h6g5F0WH+98w==\n", ""),
        lambda pem: pem.replace("-----END CERTIFICATE-----", ""),
        lambda pem: pem + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        lambda pem: "no certificate here",
    ],
)
def test_ca_bundle_blocks_must_all_be_certificates(mangle: Any) -> None:
    with pytest.raises(InputError, match=r"failed to parse CA cert bundle") as info:
        build(ca_case(mangle(reference_pem())))
    assert "\n" not in str(info.value)


def test_ca_bundle_must_be_base64() -> None:
    case = load_case("c01_minimal_jit")
    case["ca-cert-bundle"] = "not base64!"
    with pytest.raises(InputError, match=r"^bootstrap: ca-cert-bundle: not valid base64$"):
        build(case)

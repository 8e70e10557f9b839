"""User data against the Go reference (testdata/conformance), plus the project's own additions.

Conformance follows testdata/conformance/README.md: cloud-config documents are compared as YAML
data; the default install script is a placeholder in the reference, and a case that sets
runner_install_template must give a byte-identical /install_runner.sh.

One documented deviation: the reference never writes proxy settings, while this provider adds a
`bootcmd` section when the bootstrap carries a proxy. It is removed before the comparison and
checked on its own below (test_proxy_bootcmd_*).
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from userdata_cases import CONFORMANCE, INSTALL_SCRIPT, build, install_script, load_case

from garm_provider_lxd.errors import InputError, ProviderError, TemplateError
from garm_provider_lxd.userdata import PS1_HEADER

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
}


def test_every_case_is_driven() -> None:
    families = {name[0] for name in CASES}
    assert families == {"c", "e", "t", "s"}
    assert len(CASES) >= 50


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
    bootcmd = actual.pop("bootcmd", None)
    assert (bootcmd is not None) == bool(proxy_of(case))
    assert actual == expected


def proxy_of(case: dict[str, Any]) -> dict[str, str]:
    config = case.get("proxy_config") or {}
    return {k: v for k, v in config.items() if v and k in ("http_proxy", "https_proxy")}


def test_plain_text_template_gives_the_same_output_as_base64() -> None:
    case = load_case("s01_seed_example_base64")
    seed = (CONFORMANCE / "seed_runner_install_template.txt").read_text()
    assert base64.b64decode(case["extra_specs"]["runner_install_template"]).decode() == seed
    plain = json.loads(json.dumps(case))
    plain["extra_specs"]["runner_install_template"] = seed
    assert build(plain) == build(case)


# -- the proxy bootcmd (this project's addition) --------------------------------------------


def run_bootcmd(commands: list[str], root: Path, path_dirs: list[Path]) -> None:
    """Run bootcmd entries the way cloud-init does (sh), with /etc moved under root."""
    env = {"PATH": ":".join([*map(str, path_dirs), "/usr/bin", "/bin"])}
    for command in commands:
        local = command.replace("/etc/", f"{root}/etc/")
        subprocess.run(["sh", "-c", local], check=True, env=env)


@pytest.mark.parametrize("name", ["c08_proxy", "c15_everything", "c16_https_proxy_only"])
def test_proxy_bootcmd_configures_apt_dnf_yum_zypper_and_shells(name: str, tmp_path: Path) -> None:
    case = load_case(name)
    proxy = {k: v for k, v in case["proxy_config"].items() if v}
    bootcmd = yaml.safe_load(build(case))["bootcmd"]
    (tmp_path / "etc/apt/apt.conf.d").mkdir(parents=True)
    (tmp_path / "etc/dnf").mkdir(parents=True)
    (tmp_path / "etc/sysconfig").mkdir(parents=True)
    (tmp_path / "etc/profile.d").mkdir(parents=True)
    (tmp_path / "etc/dnf/dnf.conf").write_text("[main]\ngpgcheck=1\nproxy=http://old:1\n")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "zypper").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "zypper").chmod(0o755)

    run_bootcmd(bootcmd, tmp_path, [fake_bin])

    apt = (tmp_path / "etc/apt/apt.conf.d/95garm-proxy").read_text().splitlines()
    expected_apt = [
        f'Acquire::{scheme}::Proxy "{proxy[key]}";'
        for scheme, key in (("http", "http_proxy"), ("https", "https_proxy"))
        if key in proxy
    ]
    assert apt == expected_apt
    dnf_proxy = proxy.get("https_proxy") or proxy["http_proxy"]
    assert (tmp_path / "etc/dnf/dnf.conf").read_text().splitlines() == [
        "[main]",
        f"proxy={dnf_proxy}",
        "gpgcheck=1",
    ]
    assert not (tmp_path / "etc/yum.conf").exists()
    assert shell_env(tmp_path / "etc/profile.d/garm-proxy.sh", proxy) == {
        **proxy,
        **{k.upper(): v for k, v in proxy.items()},
    }
    assert shell_env(tmp_path / "etc/sysconfig/proxy", proxy) == {
        "PROXY_ENABLED": "yes",
        **{k.upper(): v for k, v in proxy.items()},
    }


def shell_env(script: Path, proxy: dict[str, str]) -> dict[str, str]:
    """Source a generated file in sh and read back the variables it set."""
    names = ["PROXY_ENABLED", *proxy, *(k.upper() for k in proxy)]
    printer = " ".join(f'"{n}=${{{n}-<unset>}}"' for n in names)
    result = subprocess.run(
        ["sh", "-c", f". {script}; printf '%s\\n' {printer}"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    pairs = (line.split("=", 1) for line in result.stdout.splitlines())
    return {k: v for k, v in pairs if v != "<unset>"}


def test_proxy_values_survive_shell_quoting(tmp_path: Path) -> None:
    case = load_case("c01_minimal_jit")
    odd = "http://us'er:p$a`ss;!@proxy:3128/?a=1&b=*"
    case["proxy_config"] = {"http_proxy": odd, "https_proxy": "", "no_proxy": "a"}
    bootcmd = yaml.safe_load(build(case))["bootcmd"]
    (tmp_path / "etc/profile.d").mkdir(parents=True)
    run_bootcmd(bootcmd[:1], tmp_path, [])
    env = shell_env(tmp_path / "etc/profile.d/garm-proxy.sh", {"http_proxy": odd, "no_proxy": "a"})
    assert env["http_proxy"] == odd
    assert env["HTTP_PROXY"] == odd


@pytest.mark.parametrize("bad", ["http://p:1\n", "http://p:1\r", "http://p 1", 'http://"p', "\\x"])
def test_proxy_values_that_cannot_be_quoted_are_refused(bad: str) -> None:
    case = load_case("c08_proxy")
    case["proxy_config"]["https_proxy"] = bad
    with pytest.raises(InputError, match=r"^bootstrap: proxy_config\.https_proxy: ") as info:
        build(case)
    assert "\n" not in str(info.value)


def test_no_bootcmd_without_a_proxy() -> None:
    case = load_case("c01_minimal_jit")
    case["proxy_config"] = {"http_proxy": "", "https_proxy": "", "no_proxy": "localhost"}
    assert "bootcmd" not in yaml.safe_load(build(case))


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

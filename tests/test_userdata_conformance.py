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
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from garm_provider_lxd.errors import InputError, ProviderError, TemplateError
from garm_provider_lxd.specs import parse_extra_specs
from garm_provider_lxd.userdata import PS1_HEADER, build_user_data

CONFORMANCE = Path(__file__).resolve().parent.parent / "testdata" / "conformance"
CASES = sorted(path.stem for path in (CONFORMANCE / "cases").glob("*.json"))
PLACEHOLDER = "<default install script>"
INSTALL_SCRIPT = "/install_runner.sh"

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


def load_case(name: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads((CONFORMANCE / "cases" / f"{name}.json").read_text())
    return case


def build(case: dict[str, Any]) -> bytes:
    return build_user_data(case, parse_extra_specs(case["extra_specs"]))


def install_script(document: dict[str, Any]) -> bytes:
    entries = [f for f in document["write_files"] if f["path"] == INSTALL_SCRIPT]
    assert len(entries) == 1
    return base64.b64decode(entries[0]["content"], validate=True)


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


# -- CA bundle and bootstrap validation ------------------------------------------------------


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


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", None, "bootstrap: name: missing"),
        ("name", 5, "bootstrap: name: expected string, got integer"),
        ("tools", None, "bootstrap: tools: missing"),
        ("tools", {}, "bootstrap: tools: expected array, got object"),
        ("callback-url", None, "bootstrap: callback-url: missing"),
        ("metadata-url", "", "bootstrap: metadata-url: empty"),
        ("instance-token", [], "bootstrap: instance-token: expected string, got array"),
        ("os_type", None, "bootstrap: os_type: missing"),
        ("labels", "x", "bootstrap: labels: expected array, got string"),
        ("ssh-keys", [1], "bootstrap: ssh-keys[0]: expected string, got integer"),
        (
            "jit_config_enabled",
            "yes",
            "bootstrap: jit_config_enabled: expected boolean, got string",
        ),
        ("proxy_config", "http://p", "bootstrap: proxy_config: expected object, got string"),
    ],
)
def test_bad_bootstrap_fields_are_named(field: str, value: object, message: str) -> None:
    case = load_case("c02_token_runner_group")
    if value is None:
        del case[field]
    else:
        case[field] = value
    with pytest.raises(InputError) as info:
        build(case)
    assert str(info.value) == message


def test_selected_tool_must_have_a_download_url() -> None:
    case = load_case("c01_minimal_jit")
    case["tools"][1]["download_url"] = None
    with pytest.raises(InputError, match=r"^bootstrap: tools\[1\]\.download_url: missing$"):
        build(case)


def test_missing_arch_means_amd64_and_null_labels_mean_none() -> None:
    case = load_case("c01_minimal_jit")
    del case["arch"]
    case["labels"] = None
    script = install_script(yaml.safe_load(build(case))).decode()
    assert "actions-runner-linux-x64-2.321.0.tar.gz" in script
    assert "RUNNER_LABELS=''" in script


def test_text_json_cannot_carry_is_an_input_error() -> None:
    case = load_case("c01_minimal_jit")
    case["ssh-keys"] = ["ssh-ed25519 AAAA \ud800"]
    with pytest.raises(InputError, match=r"^bootstrap: cannot be written as cloud-config: "):
        build(case)


# -- YAML safety -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    packages=st.lists(st.text(), max_size=4),
    keys=st.lists(st.text(), max_size=3),
)
def test_any_strings_read_back_exactly(packages: list[str], keys: list[str]) -> None:
    case = load_case("c01_minimal_jit")
    case["ssh-keys"] = keys
    specs = parse_extra_specs({"extra_packages": packages})
    document = yaml.safe_load(build_user_data(case, specs))
    assert document.get("packages", []) == list(dict.fromkeys(["curl", "tar", *packages]))
    assert document.get("ssh_authorized_keys", []) == list(dict.fromkeys(keys))


# -- the project's default install scripts ---------------------------------------------------

ODD = 'it\'s $(reboot) `id` "q" \\ ; & *'


def default_script(name: str, **changes: Any) -> str:
    case = load_case(name)
    case.update(changes)
    return install_script(yaml.safe_load(build(case))).decode()


@pytest.mark.parametrize(
    ("name", "jit"), [("c01_minimal_jit", True), ("c02_token_runner_group", False)]
)
def test_default_script_renders_and_parses_in_both_modes(name: str, jit: bool) -> None:
    script = default_script(name, labels=[ODD, "x"], **{"github-runner-group": ODD})
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert script.startswith("#!/bin/bash\n")
    assert f"USE_JIT_CONFIG={int(jit)}\n" in script
    assert "RUNNER_LABELS='it'\\''s $(reboot) `id` \"q\" \\ ; & *,x'\n" in script
    assert ("credentials/${name}" in script) and ("runner-registration-token/" in script)


def test_default_script_enables_tracing_only_on_request() -> None:
    case = load_case("c09_boot_debug_spec")
    debug = install_script(yaml.safe_load(build(case))).decode()
    assert "BOOT_DEBUG=1\n" in debug
    assert "BOOT_DEBUG=0\n" in default_script("c01_minimal_jit")


def test_windows_default_script_is_powershell_with_one_header() -> None:
    case = load_case("c12_windows")
    case["name"] = ODD
    text = build(case).decode("utf-8")
    assert text.startswith(PS1_HEADER + "\n")
    assert text.count(PS1_HEADER) == 1
    assert "$RunnerName = 'it''s $(reboot) `id` \"q\" \\ ; & *'\n" in text
    assert "actions-runner-win-x64-2.321.0.zip" in text


def test_windows_custom_template_keeps_a_single_header() -> None:
    case = load_case("c12_windows")
    for template in ("#ps1_sysnative\nWrite-Output hi\n", "Write-Output hi\n"):
        case["extra_specs"] = {"runner_install_template": template}
        assert build(case) == b"#ps1_sysnative\nWrite-Output hi\n"


# -- the default Linux script, run against a fake GARM on loopback -----------------------------

RUNNER_FILES = {
    "config.sh": '#!/bin/bash\nset -e\ncd "$(dirname "$0")"\nprintf "%s\\n" "$@" > config.args\n'
    'printf \'{"agentId": 42, "agentName": "n"}\' > .runner\n',
    "svc.sh": "#!/bin/bash\nexit 0\n",
    "bin/runsvc.sh": "#!/bin/bash\nexit 0\n",
}
JIT_RUNNER = b'\xef\xbb\xbf{\n  "agentId": 42,\n  "agentName": "garm-7f3c9a1b2d4e"\n}'
SERVICE = "actions.runner.example-org-example-repo.garm-7f3c9a1b2d4e"


def runner_tarball() -> bytes:
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path, text in RUNNER_FILES.items():
            info = tarfile.TarInfo(f"./{path}")
            info.size, info.mode = len(text), 0o755
            tar.addfile(info, io.BytesIO(text.encode()))
    return raw.getvalue()


class FakeGarm:
    """GARM's metadata, callback and tools URLs on 127.0.0.1, recording every request."""

    def __init__(self, token: str, tarball: bytes, b64_credentials: bool) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[str, str, str, bytes]] = []
        files = {
            "/metadata/credentials/runner": JIT_RUNNER,
            "/metadata/credentials/credentials": b'{"scheme": "OAuthAccessToken"}',
            "/metadata/credentials/credentials_rsaparams": b'{"d": "", "modulus": ""}',
        }
        if b64_credentials:
            files = {k: base64.b64encode(v) for k, v in files.items()}
        files["/metadata/system/service-name"] = SERVICE.encode()
        files["/metadata/systemd/unit-file?runAsUser=runner"] = b"[Service]\nUser=runner\n"
        files["/metadata/runner-registration-token/"] = b"reg-token-secret"
        files["/tools/actions-runner-linux-x64-2.321.0.tar.gz"] = tarball
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, body: bytes | None) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length)
                auth = self.headers.get("Authorization", "")
                fake.requests.append((self.command, self.path, auth, payload))
                tools = self.path.startswith("/tools/")
                if body is None or (not tools and auth != f"Bearer {token}"):
                    self.send_response(404 if body is None else 401)
                    body = b""
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer(files.get(self.path))

            def do_POST(self) -> None:
                known = self.path in ("/callbacks/status", "/callbacks/system-info/")
                self._answer(b"{}" if known else None)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def statuses(self) -> list[dict[str, Any]]:
        return [json.loads(p) for m, path, _, p in self.requests if path == "/callbacks/status"]


def namespaces_available() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def run_default_script(
    tmp_path: Path, case: dict[str, Any], fake: FakeGarm
) -> subprocess.CompletedProcess[str]:
    """Run the rendered script as GARM's runner would, with /home and sudo made private."""
    import threading

    script = tmp_path / "install_runner.sh"
    script.write_bytes(install_script(yaml.safe_load(build(case))))
    home = tmp_path / "home"
    (home / "runner").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text('#!/bin/sh\nprintf "%s\\n" "$*" >> "$SUDO_LOG"\n')
    (bin_dir / "sudo").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SUDO_LOG": str(tmp_path / "sudo.log")}
    wrapper = 'mount --bind "$1" /home && exec bash "$2"'
    paths = [str(home), str(script)]
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", wrapper, "-", *paths],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def point_at(case: dict[str, Any], fake: FakeGarm, tarball: bytes, *, debug: bool) -> None:
    import hashlib

    case["callback-url"] = f"{fake.url}/callbacks"
    case["metadata-url"] = f"{fake.url}/metadata"
    tool = next(t for t in case["tools"] if t["os"] == "linux" and t["architecture"] == "x64")
    tool["download_url"] = f"{fake.url}/tools/{tool['filename']}"
    tool["sha256_checksum"] = hashlib.sha256(tarball).hexdigest()
    case["extra_specs"] = {"enable_boot_debug": debug}


needs_namespaces = pytest.mark.skipif(
    not namespaces_available(), reason="needs root and mount namespaces"
)


@needs_namespaces
@pytest.mark.parametrize("b64_credentials", [False, True])
def test_default_script_installs_a_jit_runner(tmp_path: Path, b64_credentials: bool) -> None:
    case = load_case("c13_temp_download_token")
    tarball = runner_tarball()
    fake = FakeGarm(case["instance-token"], tarball, b64_credentials)
    point_at(case, fake, tarball, debug=True)

    result = run_default_script(tmp_path, case, fake)

    assert result.returncode == 0, result.stderr[-2000:]
    statuses = fake.statuses()
    assert statuses[0] == {"status": "installing", "message": "installing runner"}
    assert statuses[-1] == {
        "status": "idle",
        "message": "runner successfully installed",
        "agent_id": 42,
    }
    assert all(s["status"] == "installing" for s in statuses[:-1])
    runner_dir = tmp_path / "home/runner/actions-runner"
    assert (runner_dir / ".runner").read_bytes() == JIT_RUNNER
    assert (runner_dir / ".credentials_rsaparams").read_bytes() == b'{"d": "", "modulus": ""}'
    assert (runner_dir / "runsvc.sh").exists()
    download = next(r for r in fake.requests if r[1].startswith("/tools/"))
    assert download[2] == "Bearer ghs_TEMPDOWNLOADTOKEN123"
    assert all(r[2] == f"Bearer {case['instance-token']}" for r in fake.requests if r != download)
    sudo = (tmp_path / "sudo.log").read_text().splitlines()
    assert f"systemctl start {SERVICE}.service" in sudo
    assert any(f"/etc/systemd/system/{SERVICE}.service" in line for line in sudo)
    info = next(json.loads(r[3]) for r in fake.requests if r[1].endswith("system-info/"))
    assert info["agent_id"] == 42
    output = result.stdout + result.stderr
    assert "+ " in output  # boot debug traces the script ...
    assert case["instance-token"] not in output  # ... but never prints the tokens
    assert "ghs_TEMPDOWNLOADTOKEN123" not in output


@needs_namespaces
def test_default_script_registers_with_a_token(tmp_path: Path) -> None:
    case = load_case("c02_token_runner_group")
    tarball = runner_tarball()
    fake = FakeGarm(case["instance-token"], tarball, False)
    point_at(case, fake, tarball, debug=True)

    result = run_default_script(tmp_path, case, fake)

    assert result.returncode == 0, result.stderr[-2000:]
    args = (tmp_path / "home/runner/actions-runner/config.args").read_text().splitlines()
    assert args == [
        "--unattended", "--url", case["repo_url"], "--token", "reg-token-secret",
        "--name", case["name"], "--labels", ",".join(case["labels"]), "--no-default-labels",
        "--ephemeral", "--runnergroup", "lxd-runners",
    ]  # fmt: skip
    sudo = (tmp_path / "sudo.log").read_text().splitlines()
    assert sudo[-2:] == ["./svc.sh install runner", "./svc.sh start"]
    assert fake.statuses()[-1]["agent_id"] == 42
    assert "reg-token-secret" not in result.stdout + result.stderr


@needs_namespaces
def test_default_script_reports_failure_and_exits_non_zero(tmp_path: Path) -> None:
    case = load_case("c01_minimal_jit")
    tarball = runner_tarball()
    fake = FakeGarm(case["instance-token"], tarball, False)
    point_at(case, fake, tarball, debug=False)
    next(t for t in case["tools"] if t["os"] == "linux")["sha256_checksum"] = "0" * 64

    result = run_default_script(tmp_path, case, fake)

    assert result.returncode != 0
    last = fake.statuses()[-1]
    assert last["status"] == "failed"
    assert "checksum mismatch" in last["message"]
    assert not any(s["status"] == "idle" for s in fake.statuses())

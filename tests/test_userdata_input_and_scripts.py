"""User data: bootstrap validation, YAML safety and the default install scripts."""

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
from userdata_cases import build, install_script, load_case

from garm_provider_lxd.bootstrap import parse_bootstrap
from garm_provider_lxd.errors import InputError
from garm_provider_lxd.specs import parse_extra_specs
from garm_provider_lxd.userdata import PS1_HEADER, build_user_data

# -- bootstrap validation --------------------------------------------------------------------


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
    document = yaml.safe_load(build_user_data(parse_bootstrap(case), specs))
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
    """GARM's metadata, callback and tools URLs on 127.0.0.1 (and a proxy), recording requests."""

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

            def local_path(self) -> str:
                # A request sent through a proxy names the whole URL: this server is also the
                # proxy, for any host.
                if self.path.startswith("http://"):
                    return "/" + self.path.split("/", 3)[3]
                return self.path

            def _answer(self, body: bytes | None) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length)
                auth = self.headers.get("Authorization", "")
                fake.requests.append((self.command, self.path, auth, payload))
                tools = self.local_path().startswith("/tools/")
                if body is None or (not tools and auth != f"Bearer {token}"):
                    self.send_response(404 if body is None else 401)
                    body = b""
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer(files.get(self.local_path()))

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


@needs_namespaces
def test_default_script_downloads_through_the_proxy_and_hands_it_to_the_runner(
    tmp_path: Path,
) -> None:
    case = load_case("c01_minimal_jit")
    tarball = runner_tarball()
    fake = FakeGarm(case["instance-token"], tarball, False)
    point_at(case, fake, tarball, debug=False)
    tool = next(t for t in case["tools"] if t["os"] == "linux" and t["architecture"] == "x64")
    # Nothing listens on 127.0.0.2: only the proxy (the fake, on 127.0.0.1) can answer this.
    port = fake.url.rsplit(":", 1)[1]
    tool["download_url"] = f"http://127.0.0.2:{port}/tools/{tool['filename']}"
    case["proxy_config"] = {"http_proxy": fake.url, "https_proxy": "", "no_proxy": "127.0.0.1"}

    result = run_default_script(tmp_path, case, fake)

    assert result.returncode == 0, result.stderr[-2000:]
    assert fake.statuses()[-1]["status"] == "idle"
    proxied = [path for _, path, _, _ in fake.requests if not path.startswith("/")]
    assert proxied == [tool["download_url"]]  # GARM's own URLs stay direct (no_proxy)
    env = (tmp_path / "home/runner/actions-runner/.env").read_text().splitlines()
    assert env == [
        f"http_proxy={fake.url}",
        f"HTTP_PROXY={fake.url}",
        "no_proxy=127.0.0.1",
        "NO_PROXY=127.0.0.1",
    ]

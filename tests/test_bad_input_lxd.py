"""Bad input, table-driven: every case exits 1 with one clear stderr line and creates nothing."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import LxdEnv
from reliability.harness import Outcome, garm_env, one_line_failure, run, tagged, write_config

pytestmark = pytest.mark.reliability
pytest_plugins = ["reliability.fixtures"]

DROP = object()  # remove the key from the bootstrap payload
OSX_TOOL = {
    "os": "osx",
    "architecture": "x64",
    "download_url": "https://example.com/actions-runner-osx-x64.tar.gz",
    "filename": "actions-runner-osx-x64.tar.gz",
}


def _input_error(outcome: Outcome, words: tuple[str, ...], case: str = "") -> None:
    """Assert a clean exit 1 whose one line names the problem and does not blame the provider."""
    line = one_line_failure(outcome)
    assert all(word in line for word in words), (case, line)
    # Bad input is the caller's mistake: it must not read as a crash of the provider.
    assert not line.startswith("internal error"), (case, line)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# (case id, bootstrap overrides, words the stderr line must contain)
BOOTSTRAP_CASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("name-int", {"name": 42}, ("name",)),
    ("name-missing", {"name": DROP}, ("name",)),
    ("name-empty", {"name": ""}, ("name",)),
    ("name-digit-first", {"name": "9runner"}, ("not valid for LXD",)),
    ("name-dash-first", {"name": "-runner"}, ("not valid for LXD",)),
    ("name-dash-last", {"name": "runner-"}, ("not valid for LXD",)),
    ("name-underscore", {"name": "run_ner"}, ("not valid for LXD",)),
    ("name-dot", {"name": "run.ner"}, ("not valid for LXD",)),
    ("name-space", {"name": "run ner"}, ("not valid for LXD",)),
    ("name-unicode", {"name": "rünner"}, ("not valid for LXD",)),
    ("name-slash", {"name": "a/../../b"}, ("not valid for LXD",)),
    ("name-nul", {"name": "run\x00ner"}, ("not valid for LXD",)),
    ("name-64-chars", {"name": "r" * 64}, ("not valid for LXD",)),
    ("arch-i386", {"arch": "i386"}, ("i386", "not supported")),
    ("arch-s390x", {"arch": "s390x"}, ("s390x",)),
    ("arch-int", {"arch": 64}, ("arch",)),
    # A missing arch is amd64, as in the Go provider (test_provider_lxd.py creates one).
    ("os-freebsd", {"os_type": "freebsd"}, ("freebsd",)),
    ("os-empty", {"os_type": ""}, ("os_type",)),
    ("os-list", {"os_type": ["linux"]}, ("os_type",)),
    ("tools-string", {"tools": "linux-x64"}, ("tools",)),
    ("tools-empty", {"tools": []}, ("tools",)),
    ("tools-no-match", {"tools": [OSX_TOOL]}, ("tools",)),
    ("tools-item-int", {"tools": [7]}, ("tools",)),
    ("labels-object", {"labels": {"a": 1}}, ("labels",)),
    ("ssh-keys-string", {"ssh-keys": "ssh-ed25519 AAAA"}, ("ssh-keys",)),
    ("jit-string", {"jit_config_enabled": "yes"}, ("jit_config_enabled",)),
    ("ca-bundle-not-base64", {"ca-cert-bundle": "%%%"}, ("ca-cert-bundle",)),
    ("ca-bundle-not-pem", {"ca-cert-bundle": _b64("hello")}, ("CA",)),
    ("ca-bundle-int", {"ca-cert-bundle": 5}, ("ca-cert-bundle",)),
    ("proxy-config-string", {"proxy_config": "http://proxy"}, ("proxy_config",)),
    ("image-missing", {"image": DROP}, ("image",)),
    ("pool-id-int", {"pool_id": 7}, ("pool_id",)),
    ("extra-specs-list", {"extra_specs": [1]}, ("extra specs",)),
    ("specs-packages-string", {"extra_specs": {"extra_packages": "curl"}}, ("extra_packages",)),
    ("specs-debug-string", {"extra_specs": {"enable_boot_debug": "yes"}}, ("enable_boot_debug",)),
    ("specs-context-int", {"extra_specs": {"extra_context": {"a": 1}}}, ("extra_context",)),
    ("specs-script-name", {"extra_specs": {"pre_install_scripts": {"../x": "eA=="}}}, ("../x",)),
    ("specs-script-b64", {"extra_specs": {"pre_install_scripts": {"a": "!!"}}}, ("base64",)),
    ("specs-template-int", {"extra_specs": {"runner_install_template": 5}}, ("template",)),
]


def _template(text: str) -> dict[str, Any]:
    return {"extra_specs": {"runner_install_template": text}}


# Templates built to blow up; each must end in a TemplateError that names the limit or problem.
TEMPLATE_CASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("deep-if", _template("{{if true}}" * 300 + "x" + "{{end}}" * 300), ("template",)),
    ("deep-parens", _template("{{" + "(" * 500 + "1" + ")" * 500 + "}}"), ("template",)),
    ("endless-range", _template("{{range 1000000000000}}{{end}}"), ("template",)),
    ("nested-ranges", _template("{{range 100000}}{{range 100000}}{{end}}{{end}}"), ("template",)),
    ("huge-output", _template('{{range 100000}}{{printf "%0900d" 0}}{{end}}'), ("template",)),
    (
        "doubling-string",
        _template('{{$s := "xxxxxxxx"}}{{range 40}}{{$s = printf "%s%s" $s $s}}{{end}}{{$s}}'),
        ("template",),
    ),
    (
        "recursive-define",
        _template('{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}'),
        ("template",),
    ),
    (
        "doubling-define",
        _template('{{define "a"}}x{{template "a" .}}{{template "a" .}}{{end}}{{template "a" .}}'),
        ("template",),
    ),
    ("unclosed", _template("{{if .UseJITConfig}}never closed"), ("template",)),
    ("undefined-function", _template('{{readFile "/etc/passwd"}}'), ("template",)),
    ("python-attribute", _template("{{.__class__.__mro__}}"), ("template",)),
]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [pytest.param(o, w, id=i) for i, o, w in BOOTSTRAP_CASES + TEMPLATE_CASES],
)
def test_bad_bootstrap_fails_cleanly_and_creates_nothing(
    provider: Callable[..., Any],
    direct_config: Path,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
    overrides: dict[str, Any],
    words: tuple[str, ...],
) -> None:
    name = f"garm-bad-{uuid.uuid4().hex[:10]}"
    boot = bootstrap(name)
    for key, value in overrides.items():
        if value is DROP:
            boot.pop(key, None)
        else:
            boot[key] = value
    _input_error(provider("CreateInstance", direct_config, boot=boot, pool_id="pool"), words)
    assert tagged(lxd_client, controller) == {}
    assert not lxd_client.instances.exists(name)


def _valid(bootstrap: Callable[..., dict[str, Any]]) -> bytes:
    return json.dumps(bootstrap(f"garm-bad-{uuid.uuid4().hex[:10]}")).encode()


NOT_JSON = "bootstrap: not valid JSON (line 1, column"
# (case id, stdin builder, words the stderr line must contain)
STDIN_CASES: list[tuple[str, Callable[[Callable[..., dict[str, Any]]], bytes], tuple[str, ...]]] = [
    ("empty", lambda b: b"", ("no bootstrap JSON",)),
    ("whitespace", lambda b: b" \n\t ", ("no bootstrap JSON",)),
    ("malformed", lambda b: b"{name: runner}", (NOT_JSON,)),
    ("truncated", lambda b: _valid(b)[: len(_valid(b)) // 2], (NOT_JSON,)),
    ("not-utf8", lambda b: b'{"name": "\xff\xfe"}', (NOT_JSON,)),
    ("trailing-garbage", lambda b: _valid(b) + b"}{", (NOT_JSON,)),
    ("array", lambda b: b"[1, 2]", ("object",)),
    ("string", lambda b: b'"runner"', ("object",)),
    ("null", lambda b: b"null", ("object",)),
    ("number", lambda b: b"42", ("object",)),
    ("nested-100k", lambda b: b"[" * 100_000 + b"]" * 100_000, ("JSON nested too deeply",)),
    ("oversized-10MB", lambda b: b'{"name": "' + b"a" * (10 << 20) + b'"}', ("larger",)),
    ("oversized-10MB-valid", lambda b: b" " * (10 << 20) + _valid(b), ("larger",)),
]


@pytest.mark.parametrize(
    ("make", "words"), [pytest.param(make, words, id=case) for case, make, words in STDIN_CASES]
)
def test_bad_stdin_fails_cleanly_and_creates_nothing(
    provider_bin: str,
    direct_config: Path,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
    make: Callable[[Callable[..., dict[str, Any]]], bytes],
    words: tuple[str, ...],
) -> None:
    env = garm_env("CreateInstance", direct_config, controller, pool_id="pool")
    _input_error(run(provider_bin, env, make(bootstrap)), words)
    assert tagged(lxd_client, controller) == {}


def _env_cases(config: str) -> list[tuple[str, dict[str, str], tuple[str, ...]]]:
    base = garm_env("CreateInstance", config, "ctl", pool_id="pool")
    return [
        ("unknown-command", {**base, "GARM_COMMAND": "DestroyEverything"}, ("unknown",)),
        ("lowercase-command", {**base, "GARM_COMMAND": "createinstance"}, ("unknown",)),
        ("no-command", {k: v for k, v in base.items() if k != "GARM_COMMAND"}, ("GARM_COMMAND",)),
        ("empty-command", {**base, "GARM_COMMAND": ""}, ("GARM_COMMAND",)),
        ("empty-controller", {**base, "GARM_CONTROLLER_ID": ""}, ("GARM_CONTROLLER_ID",)),
        ("blank-controller", {**base, "GARM_CONTROLLER_ID": "  "}, ("GARM_CONTROLLER_ID",)),
        ("no-config-var", {**base, "GARM_PROVIDER_CONFIG_FILE": ""}, ("CONFIG_FILE",)),
        ("bad-version", {**base, "GARM_INTERFACE_VERSION": "v9.9.9"}, ("GARM_INTERFACE_VERSION",)),
        ("delete-no-id", {**base, "GARM_COMMAND": "DeleteInstance"}, ("GARM_INSTANCE_ID",)),
        ("get-no-id", {**base, "GARM_COMMAND": "GetInstance"}, ("GARM_INSTANCE_ID",)),
        ("start-blank-id", {**base, "GARM_COMMAND": "StartInstance", "GARM_INSTANCE_ID": " "}, ()),
        (
            "specs-not-base64",
            {**base, "GARM_COMMAND": "ValidatePoolInfo", "GARM_POOL_EXTRASPECS": "%%"},
            ("GARM_POOL_EXTRASPECS",),
        ),
        (
            "specs-bad-type",
            {
                **base,
                "GARM_COMMAND": "ValidatePoolInfo",
                "GARM_POOL_EXTRASPECS": _b64('{"disable_updates": "no"}'),
            },
            ("disable_updates",),
        ),
    ]


def test_bad_environment_fails_cleanly(
    provider_bin: str,
    direct_config: Path,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
) -> None:
    boot = bootstrap(f"garm-bad-{uuid.uuid4().hex[:10]}")
    for case, env, words in _env_cases(str(direct_config)):
        _input_error(run(provider_bin, env, json.dumps(boot).encode()), words, case)
    assert not lxd_client.instances.exists(boot["name"])


def _config_file(tmp: Path, case: str, socket: str) -> Path:
    """Write the config file of one bad-config case and return its path."""
    (tmp / "a-directory").mkdir()
    (tmp / "regular-file").write_text("not a socket\n")
    files = {
        "missing-file": None,
        "directory": None,
        "not-utf8": b'unix_socket_path = "\xff"\n',
        "not-toml": b"unix_socket_path = /no/quotes\n[[[\n",
        "empty": b"",
    }
    if case in files:
        path = {"missing-file": tmp / "nope.toml", "directory": tmp / "a-directory"}.get(
            case, tmp / f"{case}.toml"
        )
        content = files[case]
        if content is not None:
            path.write_bytes(content)
        return path
    https: dict[str, object] = {"url": "https://127.0.0.1:8443"}
    configs: dict[str, dict[str, object]] = {
        "timeout-string": {"unix_socket_path": socket, "request_timeout_seconds": "fast"},
        "timeout-negative": {"unix_socket_path": socket, "operation_timeout_seconds": -1},
        "instance-type": {"unix_socket_path": socket, "instance_type": "pod"},
        "socket-int": {"unix_socket_path": 7},
        "url-http": {"url": "http://127.0.0.1:8443"},
        "url-without-cert": https,
        "socket-missing": {"unix_socket_path": str(tmp / "no-such.socket")},
        "socket-regular-file": {"unix_socket_path": str(tmp / "regular-file")},
        "cert-path-missing": {
            **https,
            "client_certificate": str(tmp / "no-cert.pem"),
            "client_key": str(tmp / "no-key.pem"),
        },
        "cert-path-directory": {
            **https,
            "client_certificate": str(tmp / "a-directory"),
            "client_key": str(tmp / "a-directory"),
        },
        "cert-not-pem": {
            **https,
            "client_certificate": str(tmp / "regular-file"),
            "client_key": str(tmp / "regular-file"),
        },
        "server-cert-missing": {
            **https,
            "client_certificate": str(tmp / "regular-file"),
            "client_key": str(tmp / "regular-file"),
            "tls_server_certificate": str(tmp / "no-server.crt"),
        },
    }
    return write_config(tmp / f"{case}.toml", **configs[case])


# (case, words the stderr line must contain)
CONFIG_CASES = [
    ("missing-file", ("cannot read",)),
    ("directory", ("cannot read",)),
    ("not-utf8", ("UTF-8",)),
    ("not-toml", ("invalid TOML",)),
    ("empty", ("unix_socket_path", "url")),
    ("timeout-string", ("request_timeout_seconds",)),
    ("timeout-negative", ("operation_timeout_seconds",)),
    ("instance-type", ("instance_type",)),
    ("socket-int", ("unix_socket_path",)),
    ("url-http", ("url",)),
    ("url-without-cert", ("client_certificate",)),
    ("socket-missing", ("cannot connect",)),
    ("socket-regular-file", ("cannot connect",)),
    ("cert-path-missing", ("client_certificate", "cannot read")),
    ("cert-path-directory", ("client_certificate", "cannot read")),
    ("cert-not-pem", ("client_cert",)),
    ("server-cert-missing", ("tls_server_certificate", "cannot read")),
]


@pytest.mark.parametrize(("case", "words"), CONFIG_CASES, ids=[c for c, _ in CONFIG_CASES])
def test_bad_config_fails_cleanly_for_every_lxd_command(
    provider_bin: str,
    tmp_path: Path,
    lxd_env: LxdEnv,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    case: str,
    words: tuple[str, ...],
) -> None:
    boot = bootstrap(f"garm-bad-{uuid.uuid4().hex[:10]}")
    config = _config_file(tmp_path, case, lxd_env.socket)
    for command in ("CreateInstance", "ListInstances", "DeleteInstance"):
        env = garm_env(command, config, "ctl", pool_id="pool", instance_id=boot["name"])
        line = one_line_failure(run(provider_bin, env, json.dumps(boot).encode()))
        assert all(word in line for word in words), (command, line)
        # A mistake in the operator's config is not a provider bug.
        assert not line.startswith("internal error"), (command, line)
    assert not lxd_client.instances.exists(boot["name"])

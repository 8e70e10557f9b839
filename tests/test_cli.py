"""The GARM contract at the process boundary, for what needs no LXD (driven in-process)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT

from garm_provider_lxd import __version__
from garm_provider_lxd.cli import main

CASES = Path(__file__).resolve().parent.parent / "testdata" / "conformance" / "cases"


def run(
    env: dict[str, str], stdin: bytes = b"", argv: list[str] | None = None
) -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    code = main(argv or [], environ=env, stdin=io.BytesIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("version", ["", "v0.1.0", "v0.1.1"])
def test_get_version_prints_a_bare_string(version: str) -> None:
    code, out, err = run({"GARM_COMMAND": "GetVersion", "GARM_INTERFACE_VERSION": version})
    assert (code, out, err) == (0, f"v{__version__}".encode(), "")


def test_supported_interface_versions() -> None:
    code, out, _ = run(
        {"GARM_COMMAND": "GetSupportedInterfaceVersions", "GARM_INTERFACE_VERSION": "v0.1.1"}
    )
    assert code == 0
    assert json.loads(out) == ["v0.1.0", "v0.1.1"]


@pytest.mark.parametrize("command", ["GetConfigJSONSchema", "GetExtraSpecsJSONSchema"])
def test_schemas_are_one_json_object(command: str) -> None:
    code, out, err = run({"GARM_COMMAND": command, "GARM_INTERFACE_VERSION": "v0.1.1"})
    assert code == 0, err
    schema = json.loads(out)
    assert schema["type"] == "object"
    assert schema["properties"]


def test_config_schema_covers_every_go_key() -> None:
    _, out, _ = run({"GARM_COMMAND": "GetConfigJSONSchema"})
    keys = set(json.loads(out)["properties"])
    assert {
        "unix_socket_path",
        "url",
        "client_certificate",
        "client_key",
        "tls_server_certificate",
        "tls_ca",
        "project_name",
        "include_default_profile",
        "instance_type",
        "secure_boot",
        "image_remotes",
    } <= keys


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "GARM_COMMAND is not set"),
        ({"GARM_COMMAND": "Explode"}, "unknown GARM_COMMAND"),
        ({"GARM_COMMAND": "GetVersion", "GARM_INTERFACE_VERSION": "v9"}, "not supported"),
        ({"GARM_COMMAND": "ListInstances"}, "GARM_CONTROLLER_ID is not set"),
        (
            {"GARM_COMMAND": "GetInstance", "GARM_CONTROLLER_ID": "c"},
            "GARM_INSTANCE_ID is not set",
        ),
        (
            {"GARM_COMMAND": "ListInstances", "GARM_CONTROLLER_ID": "c"},
            "GARM_PROVIDER_CONFIG_FILE is not set",
        ),
        (
            {
                "GARM_COMMAND": "ListInstances",
                "GARM_CONTROLLER_ID": "c",
                "GARM_PROVIDER_CONFIG_FILE": "/nonexistent/provider.toml",
            },
            "cannot read",
        ),
    ],
)
def test_bad_environment_is_one_line_and_exit_1(env: dict[str, str], message: str) -> None:
    code, out, err = run(env)
    assert code == 1
    assert out == b""
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def _config(tmp_path: Path) -> str:
    path = tmp_path / "provider.toml"
    # A socket that does not exist: these tests must fail before talking to LXD.
    path.write_text(f'unix_socket_path = "{tmp_path}/no.socket"\n')
    return str(path)


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"", "no bootstrap JSON"),
        (b"{", "bootstrap: not valid JSON (line 1, column 1)\n"),
        (b'{"a": tru}', "bootstrap: not valid JSON (line 1, column 10)\n"),
        (b'{\n  "name": "r",\n  x}', "bootstrap: not valid JSON (line 3, column 3)\n"),
        (b"[1, 2]", "must be an object"),
        (b"x" * ((4 << 20) + 1), "larger than 4 MiB"),
    ],
)
def test_bad_bootstrap_on_stdin(tmp_path: Path, stdin: bytes, message: str) -> None:
    env = {
        "GARM_COMMAND": "CreateInstance",
        "GARM_CONTROLLER_ID": "c",
        "GARM_POOL_ID": "p",
        "GARM_PROVIDER_CONFIG_FILE": _config(tmp_path),
    }
    code, out, err = run(env, stdin)
    assert (code, out) == (1, b"")
    assert message in err


def test_validate_pool_info_checks_extra_specs(tmp_path: Path) -> None:
    env = {
        "GARM_COMMAND": "ValidatePoolInfo",
        "GARM_INTERFACE_VERSION": "v0.1.1",
        "GARM_CONTROLLER_ID": "c",
        "GARM_PROVIDER_CONFIG_FILE": _config(tmp_path),
    }
    good = base64.b64encode(b'{"disable_updates": true}').decode()
    assert run({**env, "GARM_POOL_EXTRASPECS": good})[0] == 0
    null = base64.b64encode(b"null").decode()
    assert run({**env, "GARM_POOL_EXTRASPECS": null})[0] == 0
    bad = base64.b64encode(b'{"disable_updates": "yes"}').decode()
    code, _, err = run({**env, "GARM_POOL_EXTRASPECS": bad})
    assert code == 1
    assert "disable_updates" in err
    code, _, err = run({**env, "GARM_POOL_EXTRASPECS": "!!!"})
    assert code == 1
    assert "GARM_POOL_EXTRASPECS" in err


def test_userdata_subcommand_prints_cloud_config() -> None:
    stdin = (CASES / "c01_minimal_jit.json").read_bytes()
    code, out, err = run({}, stdin, ["userdata"])
    assert code == 0, err
    assert out.startswith(b"#cloud-config\n")


def test_userdata_subcommand_prints_the_reference_proxy_bootcmd() -> None:
    stdin = (CASES / "p03_http_https_no_proxy.json").read_bytes()
    code, out, err = run({}, stdin, ["userdata"])
    assert code == 0, err
    expected = yaml.safe_load((CASES / "p03_http_https_no_proxy.userdata").read_text())
    assert yaml.safe_load(out)["bootcmd"] == expected["bootcmd"]


def test_userdata_subcommand_refuses_a_proxy_that_would_change_the_boot_script() -> None:
    case = json.loads((CASES / "p03_http_https_no_proxy.json").read_bytes())
    case["proxy_config"]["https_proxy"] = "http://p:1\nrm -rf /tmp/x"
    code, out, err = run({}, json.dumps(case).encode(), ["userdata"])
    assert (code, out) == (1, b"")
    assert err.startswith("garm-provider-lxd: bootstrap: proxy_config.https_proxy: holds '\\n';")
    assert err.count("\n") == 1


def test_userdata_subcommand_bad_input_is_one_line() -> None:
    stdin = (CASES / "e03_unsupported_os.json").read_bytes()
    code, out, err = run({}, stdin, ["userdata"])
    assert (code, out) == (1, b"")
    assert "freebsd" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "command",
    [["userdata"], ["check"], ["setup"], ["image"], ["image", "build"], ["status"], ["logs"],
     ["prune"], ["stats"]],
)  # fmt: skip
def test_each_subcommands_help_shows_real_invocations(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    import re
    import shlex

    from garm_provider_lxd.admin.cli import build_parser

    code, _, _ = run({}, b"", [*command, "--help"])
    shown = capsys.readouterr().out
    assert code == 0
    examples = shown.split("\nexample", 1)[1].replace("\\\n", " ")
    invocations = [line for line in examples.splitlines() if line.startswith("  garm-provider-lxd")]
    assert invocations
    for line in invocations:
        line = line.split("  #", 1)[0]
        line = re.sub(r"<[^<>\s][^<>]*>", "X", line)  # placeholders
        line = re.sub(r"\s<\s+\S+", "", line)  # a redirect of stdin
        words = shlex.split(line)[1:]
        assert words[: len(command)] == command, line
        build_parser().parse_args(words)  # a usage error raises InputError


def test_userdata_help_says_where_the_bootstrap_comes_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run({}, b"", ["userdata", "--help"])[0] == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "GARM writes one to the provider's stdin on every CreateInstance" in shown
    assert "testdata/conformance/cases/*.json" in shown
    assert "the user data does not depend on it" in shown  # what --config changes
    assert "--install-script" in shown


def test_userdata_install_script_is_the_decoded_script_of_the_user_data() -> None:
    import yaml

    stdin = (CASES / "c01_minimal_jit.json").read_bytes()
    code, user_data, err = run({}, stdin, ["userdata"])
    assert code == 0, err
    code, script, err = run({}, stdin, ["userdata", "--install-script"])
    assert code == 0, err
    files = yaml.safe_load(user_data)["write_files"]
    carried = [f["content"] for f in files if f["path"] == "/install_runner.sh"]
    assert [base64.b64decode(carried[0])] == [script]
    assert script.startswith(b"#!/bin/bash\n")


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b'{"name": tru}', "bootstrap: not valid JSON (line 1, column 13)\n"),
        (b"{\n\n  name: 1}", "bootstrap: not valid JSON (line 3, column 3)\n"),
    ],
)
def test_userdata_malformed_bootstrap_says_where(stdin: bytes, message: str) -> None:
    code, out, err = run({}, stdin, ["userdata"])
    assert (code, out) == (1, b"")
    assert err.endswith(message), err
    assert "expected" not in err


def test_unknown_subcommand_is_a_usage_error() -> None:
    code, _, err = run({}, b"", ["frobnicate"])
    assert code == 1
    assert "see --help" in err


def _modules_after(code: str) -> set[str]:
    """Modules that running code imports beyond what the interpreter loads at start-up."""
    import subprocess
    import sys

    def loaded(body: str) -> set[str]:
        script = f"import sys\n{body}\nprint(' '.join(sorted(sys.modules)))"
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return set(run.stdout.split())

    return loaded(code) - loaded("pass")


@pytest.mark.parametrize(
    "command", ["GetVersion", "GetConfigJSONSchema", "GetExtraSpecsJSONSchema"]
)
def test_static_commands_import_no_lxd_or_template_code(command: str) -> None:
    loaded = _modules_after(
        "import io\nfrom garm_provider_lxd.cli import main\n"
        f"main([], environ={{'GARM_COMMAND': '{command}'}}, stdout=io.BytesIO())"
    )
    assert not loaded & {
        "garm_provider_lxd.admin",
        "garm_provider_lxd.lxd",
        "garm_provider_lxd.provider",
        "garm_provider_lxd._native",
        "garm_provider_lxd.userdata",
        "garm_provider_lxd.gotemplate",
        "jinja2",
        "pylxd",
        "tomllib",
    }


# What no LXD command may import: every runner create and delete pays for it. `inspect` (via
# dataclasses), `typing`, `re` (via json, tomllib, typing, base64), `enum` (via signal),
# `collections` (via collections.abc at run time), urllib and the template engines each cost
# more start-up time than the provider's own work; the operator commands (`admin`) are another
# program.
HEAVY_MODULES = {
    "argparse",
    "base64",
    "collections",
    "concurrent.futures",
    "dataclasses",
    "enum",
    "garm_provider_lxd.admin",
    "garm_provider_lxd.gotemplate",
    "garm_provider_lxd.userdata",
    "inspect",
    "jinja2",
    "json",
    "pylxd",
    "re",
    "requests",
    "signal",
    "tomllib",
    "typing",
    "urllib.parse",
}


@pytest.mark.parametrize("diagnostics", [False, True], ids=["plain", "diagnostics"])
@pytest.mark.parametrize(
    "command", ["GetInstance", "ListInstances", "StartInstance", "StopInstance", "DeleteInstance"]
)
def test_lxd_commands_avoid_heavy_stdlib_modules(
    command: str, diagnostics: bool, tmp_path: Path
) -> None:
    # The socket does not exist, so the command fails at its first request, after config,
    # extra specs, provider and transport have all been loaded and used (and, with
    # [diagnostics], the command record written).
    config = tmp_path / "config.toml"
    extra = (
        f'[diagnostics]\ncommand_log = "{tmp_path}/commands.log"\n'
        f'postmortem_dir = "{tmp_path}/postmortems"\n'
        if diagnostics
        else ""
    )
    config.write_text(f'unix_socket_path = "{tmp_path}/missing.socket"\n[image_remotes]\n{extra}')
    specs = base64.b64encode(b'{"profiles": ["default"], "config": {"limits.cpu": "1"}}')
    environ = {
        "GARM_COMMAND": command,
        "GARM_INTERFACE_VERSION": "v0.1.1",
        "GARM_PROVIDER_CONFIG_FILE": str(config),
        "GARM_CONTROLLER_ID": "controller",
        "GARM_POOL_ID": "pool",
        "GARM_INSTANCE_ID": "runner",
        "GARM_POOL_EXTRASPECS": specs.decode(),
    }
    loaded = _modules_after(
        "import io\nfrom garm_provider_lxd.cli import main\n"
        f"err = io.StringIO()\ncode = main([], environ={environ!r}, stderr=err)\n"
        "assert code == 1 and 'missing.socket' in err.getvalue(), (code, err.getvalue())"
    )
    assert "garm_provider_lxd.lxd" in loaded
    assert not loaded & HEAVY_MODULES
    assert ("garm_provider_lxd.command_log" in loaded) == diagnostics
    if diagnostics:
        assert (tmp_path / "commands.log").read_text().count("\n") == 1


def test_create_with_a_garm_template_avoids_heavy_modules(tmp_path: Path) -> None:
    # GARM injects its runner_install_template into every create's extra specs: that path
    # (bootstrap, user data, the Go template interpreter, policy, images) must stay as light as
    # the other LXD commands. Only the default script, without a template, needs jinja2.
    config = tmp_path / "config.toml"
    config.write_text(f'unix_socket_path = "{tmp_path}/missing.socket"\n')
    seed = REPO_ROOT / "testdata/conformance/cases/s01_seed_example_base64.json"
    boot = json.loads(seed.read_text())
    boot.update(name="garm-light", image="busybox", flavor="default")
    assert boot["extra_specs"]["runner_install_template"]
    environ = {
        "GARM_COMMAND": "CreateInstance",
        "GARM_INTERFACE_VERSION": "v0.1.0",
        "GARM_PROVIDER_CONFIG_FILE": str(config),
        "GARM_CONTROLLER_ID": "controller",
        "GARM_POOL_ID": "pool",
    }
    loaded = _modules_after(
        "import io\nfrom garm_provider_lxd.cli import main\n"
        f"stdin = io.BytesIO({json.dumps(boot).encode()!r})\n"
        f"err = io.StringIO()\ncode = main([], environ={environ!r}, stdin=stdin, stderr=err)\n"
        "assert code == 1 and 'missing.socket' in err.getvalue(), (code, err.getvalue())"
    )
    assert "garm_provider_lxd.gotemplate" in loaded
    # SIGTERM is handled through the built-in `_signal`: `signal` would bring `enum` with it.
    allowed = {"garm_provider_lxd.gotemplate", "garm_provider_lxd.userdata"}
    assert not loaded & ((HEAVY_MODULES - allowed) | {"pathlib"})

"""User data for a runner: cloud-config on Linux, a PowerShell script on Windows."""

from __future__ import annotations

import os

from .bootstrap import (
    ARCHITECTURES,
    OS_TYPES,
    Bootstrap,
    parse_bootstrap,
    string_field,
    wrong_type,
)
from .errors import InputError
from .specs import ExtraSpecs, parse_extra_specs, strict_b64decode

# Type-only imports: `typing` and `pathlib` (which pulls in `re`, `fnmatch`, `urllib.parse` and
# `ipaddress`) cost ~15 ms of start-up on every CreateInstance.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

# garm-provider-common defaults: DefaultUser, DefaultUserShell, DefaultUserGroups.
RUNNER_USER = "runner"
RUNNER_GROUPS = (
    "sudo", "adm", "cdrom", "dialout", "dip", "video", "plugdev", "netdev", "docker", "lxd",
)  # fmt: skip
PS1_HEADER = "#ps1_sysnative"
PROXY_KEYS = ("http_proxy", "https_proxy", "no_proxy")
_TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_SHELL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@%+=:,./_-")
# What a proxy value must not hold: what acts inside a double-quoted shell string, and white
# space; the rest of what is not printable (control characters, C1 included) goes with them.
_REFUSED_IN_PROXY = frozenset('$`"\\ ')


def build_user_data(boot: Bootstrap, specs: ExtraSpecs, *, script_only: bool = False) -> bytes:
    """Render the user data GARM's BootstrapInstance and the pool's extra specs ask for
    (script_only: the install script it carries, decoded)."""
    system = boot.os_type
    bootstrap = boot.data
    tool = select_tools(bootstrap, OS_TYPES[system], ARCHITECTURES[boot.arch][1])
    ca_bundle = ca_cert_bundle(bootstrap)
    proxy = proxy_settings(bootstrap, system)
    params = install_params(boot, specs, tool, ca_bundle)
    script = render_install_script(system, params, specs, tool, proxy)
    if script_only:
        return script
    if system == "windows":
        if script.split(b"\n", 1)[0].rstrip(b"\r") == PS1_HEADER.encode():
            return script
        return PS1_HEADER.encode() + b"\n" + script
    return cloud_config(bootstrap, specs, script, ca_bundle, proxy)


def user_data_for(bootstrap: Mapping[str, Any]) -> bytes:
    """Build the user data CreateInstance attaches for a bootstrap (what `userdata` prints)."""
    return build_user_data(
        parse_bootstrap(bootstrap), parse_extra_specs(bootstrap.get("extra_specs"))
    )


def install_script_for(bootstrap: Mapping[str, Any]) -> bytes:
    """The install script the user data carries (base64 in write_files), decoded."""
    specs = parse_extra_specs(bootstrap.get("extra_specs"))
    return build_user_data(parse_bootstrap(bootstrap), specs, script_only=True)


def _strings(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise wrong_type(key, "array", value)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise wrong_type(f"{key}[{index}]", "string", item)
    return value


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def select_tools(bootstrap: Mapping[str, Any], os_name: str, arch: str) -> Mapping[str, Any]:
    """Pick the runner download for GitHub's OS and architecture names."""
    tools = bootstrap.get("tools")
    if tools is None:
        raise InputError("bootstrap: tools: missing")
    if not isinstance(tools, list):
        raise wrong_type("tools", "array", tools)
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise wrong_type(f"tools[{index}]", "object", tool)
        if tool.get("os") == os_name and tool.get("architecture") == arch:
            at = f"tools[{index}]."
            for key in ("download_url", "filename"):
                string_field(tool, key, required=True, at=at)
            string_field(tool, "temp_download_token", at=at)
            checksum = string_field(tool, "sha256_checksum", at=at)
            # Empty means no checksum (the install scripts then skip the check); anything else
            # reaches `sha256sum --check` and must be a digest, not more lines or words.
            if checksum and (len(checksum) != 64 or not _HEX_DIGITS.issuperset(checksum)):
                raise InputError(f"bootstrap: {at}sha256_checksum: expected 64 hexadecimal digits")
            return tool
    raise InputError(f"failed to find tools for OS {os_name} and arch {arch}")


def ca_cert_bundle(bootstrap: Mapping[str, Any]) -> str:
    """Decode and check the CA bundle (see pem.py for what it must hold)."""
    from .pem import certificate_bundle_problem

    raw = string_field(bootstrap, "ca-cert-bundle")
    if not raw:
        return ""
    data = strict_b64decode(raw)
    if data is None:
        raise InputError("bootstrap: ca-cert-bundle: not valid base64")
    problem = certificate_bundle_problem(data)
    if problem:
        raise InputError(f"adding CA cert bundle: failed to parse CA cert bundle: {problem}")
    # Blocks are ASCII; bytes of the text around them that are not UTF-8 become U+FFFD (the
    # cloud-config document is UTF-8), which changes no certificate.
    return data.decode("utf-8", "replace")


def proxy_settings(bootstrap: Mapping[str, Any], os_type: str) -> dict[str, str]:
    """The non-empty proxy settings; on Linux, refusing values the boot script cannot hold."""
    config = bootstrap.get("proxy_config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise wrong_type("proxy_config", "object", config)
    proxy: dict[str, str] = {}
    for key in PROXY_KEYS:
        value = string_field(config, key, at="proxy_config.")
        bad = next((c for c in value if c in _REFUSED_IN_PROXY or not c.isprintable()), None)
        # Windows user data is the install script alone: the reference ignores the proxy there.
        if bad is not None and os_type != "windows":
            raise InputError(
                f"bootstrap: proxy_config.{key}: holds {bad!a}; the boot script sets it "
                "inside double quotes, where $, backticks, double quotes, backslashes, white "
                "space and control characters change the script (a proxy URL percent-encodes them)"
            )
        if value:
            proxy[key] = value
    return proxy


def install_params(
    boot: Bootstrap, specs: ExtraSpecs, tool: Mapping[str, Any], ca_bundle: str
) -> dict[str, Any]:
    """The install template's data: cloudconfig.InstallRunnerParams, fields in Go order."""
    bootstrap = boot.data
    jit = bootstrap.get("jit_config_enabled", False)
    if not isinstance(jit, bool):
        raise wrong_type("jit_config_enabled", "boolean", jit)
    return {
        "FileName": tool["filename"],
        "DownloadURL": tool["download_url"],
        "RunnerUsername": RUNNER_USER,
        "RunnerGroup": RUNNER_USER,
        "RepoURL": string_field(bootstrap, "repo_url"),
        "MetadataURL": string_field(bootstrap, "metadata-url", required=True),
        "RunnerName": boot.name,
        "RunnerLabels": ",".join(_strings(bootstrap, "labels")),
        "CallbackURL": string_field(bootstrap, "callback-url", required=True),
        "CallbackToken": string_field(bootstrap, "instance-token", required=True),
        "TempDownloadToken": tool.get("temp_download_token") or "",
        "CABundle": ca_bundle,
        "GitHubRunnerGroup": string_field(bootstrap, "github-runner-group"),
        "EnableBootDebug": specs.enable_boot_debug,
        "ExtraContext": dict(specs.extra_context),
        "UseJITConfig": jit,
    }


def render_install_script(
    os_type: str,
    params: Mapping[str, Any],
    specs: ExtraSpecs,
    tool: Mapping[str, Any],
    proxy: Mapping[str, str],
) -> bytes:
    """Render the pool's runner_install_template, or the project's default script."""
    if specs.runner_install_template:
        from .gotemplate import GoStruct, render

        data = GoStruct("cloudconfig.InstallRunnerParams", dict(params))
        return render(specs.runner_install_template.decode("utf-8"), data).encode("utf-8")
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["sh"] = sh_quote
    env.filters["ps"] = ps_quote
    name = "install_runner.ps1.j2" if os_type == "windows" else "install_runner.sh.j2"
    with open(os.path.join(_TEMPLATES, name), encoding="utf-8") as handle:
        template = env.from_string(handle.read())
    context = {**params, "Sha256Checksum": tool.get("sha256_checksum") or "", "Proxy": proxy}
    return template.render(context).encode("utf-8")


def sh_quote(value: object) -> str:
    """Quote a value as one POSIX shell word (left bare when nothing in it is special)."""
    text = str(value)
    if text and _SHELL_SAFE.issuperset(text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def ps_quote(value: object) -> str:
    """Quote a value as a PowerShell single-quoted string."""
    text = str(value)
    for quote in "'\u2018\u2019\u201a\u201b":
        text = text.replace(quote, quote * 2)
    return "'" + text + "'"


def proxy_bootcmd(proxy: Mapping[str, str]) -> list[str]:
    """garm-provider-common's bootcmd: one script pointing the package manager at the proxy."""
    if not proxy.keys() & {"http_proxy", "https_proxy"}:
        return []
    # The reference's text byte for byte (params.ProxyConfig.GetBootCmd, v0.1.10): a
    # `NAME="value"` line for each setting given, then templates/proxy_bootcmd.sh.
    assignments = "".join(f'\n{key.upper()}="{proxy[key]}"' for key in PROXY_KEYS if key in proxy)
    with open(os.path.join(_TEMPLATES, "proxy_bootcmd.sh"), encoding="utf-8") as handle:
        return [f"{assignments}\n{handle.read()}"]


def runner_user() -> dict[str, Any]:
    """cloud-init's default_user for runners (also what `image build` creates in an image)."""
    return {
        "name": RUNNER_USER,
        "home": f"/home/{RUNNER_USER}",
        "shell": "/bin/bash",
        "groups": list(RUNNER_GROUPS),
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
    }


def cloud_config(
    bootstrap: Mapping[str, Any],
    specs: ExtraSpecs,
    script: bytes,
    ca_bundle: str,
    proxy: Mapping[str, str],
) -> bytes:
    """Assemble the #cloud-config document (YAML and base64 come from the extension)."""
    from ._native import b64encode, json_dumps
    from ._native import cloud_config as render_cloud_config

    base = () if specs.disable_updates else ("curl", "tar")
    scripts = sorted(specs.pre_install_scripts.items())
    files = [(f"/garm-pre-install/{name}", data) for name, data in scripts]
    files.append(("/install_runner.sh", script))
    document: dict[str, Any] = {
        "users": ["default"],
        "package_upgrade": not specs.disable_updates,
        "packages": _unique((*base, *specs.extra_packages)),
        "ssh_authorized_keys": _unique(_strings(bootstrap, "ssh-keys")),
        "system_info": {"default_user": runner_user()},
        "runcmd": [path for path, _ in files[:-1]]
        + ["rm -rf /garm-pre-install", f"su -l -c /install_runner.sh {RUNNER_USER}"]
        + ["rm -f /install_runner.sh"],
        "write_files": [
            {"encoding": "b64", "content": b64encode(data), "owner": "root:root"}
            | {"path": path, "permissions": "755"}
            for path, data in files
        ],
        "ca_certs": {"remove_defaults": False, "trusted": [ca_bundle]} if ca_bundle else None,
        "bootcmd": proxy_bootcmd(proxy),
    }
    try:
        return render_cloud_config(json_dumps(document))
    except ValueError as exc:  # e.g. a lone surrogate escaped in the bootstrap JSON
        raise InputError(f"bootstrap: cannot be written as cloud-config: {exc}") from None

"""Go text/template conformance of garm_provider_lxd.gotemplate on the reference's own cases.

The template cases of testdata/conformance (t*, s01) must render the reference provider's
/install_runner.sh byte for byte, from cloudconfig.InstallRunnerParams built as the reference
builds it; the template error cases (e08-e12) must fail with the reference's message and line.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from garm_provider_lxd.errors import TemplateError
from garm_provider_lxd.gotemplate import GoStruct, render

CONFORMANCE = Path(__file__).resolve().parent.parent / "testdata" / "conformance"
CASES = CONFORMANCE / "cases"
_ARCH = {"amd64": "x64", "arm64": "arm64", "arm": "arm"}


def install_params(bootstrap: dict[str, Any]) -> GoStruct:
    """Build cloudconfig.InstallRunnerParams from a BootstrapInstance as the reference does."""
    specs = bootstrap.get("extra_specs") or {}
    os_name = "win" if bootstrap["os_type"] == "windows" else bootstrap["os_type"]
    tool = next(
        t
        for t in bootstrap["tools"]
        if t["os"] == os_name and t["architecture"] == _ARCH[bootstrap["arch"]]
    )
    ca_bundle = bootstrap.get("ca-cert-bundle")
    return GoStruct(
        "cloudconfig.InstallRunnerParams",
        {
            "FileName": tool["filename"],
            "DownloadURL": tool["download_url"],
            "RunnerUsername": "runner",
            "RunnerGroup": "runner",
            "RepoURL": bootstrap["repo_url"],
            "MetadataURL": bootstrap["metadata-url"],
            "RunnerName": bootstrap["name"],
            "RunnerLabels": ",".join(bootstrap.get("labels") or []),
            "CallbackURL": bootstrap["callback-url"],
            "CallbackToken": bootstrap["instance-token"],
            "TempDownloadToken": tool.get("temp_download_token") or "",
            "CABundle": base64.b64decode(ca_bundle).decode() if ca_bundle else "",
            "GitHubRunnerGroup": bootstrap.get("github-runner-group") or "",
            "EnableBootDebug": bool(specs.get("enable_boot_debug")),
            "UseJITConfig": bool(bootstrap.get("jit_config_enabled")),
            "ExtraContext": specs.get("extra_context") or {},
        },
    )


def _template_cases(pattern: str) -> list[Path]:
    return [
        path
        for path in sorted(CASES.glob(pattern))
        if (json.loads(path.read_text()).get("extra_specs") or {}).get("runner_install_template")
    ]


def _expected_script(case: Path) -> str:
    userdata = yaml.safe_load(case.with_suffix(".userdata").read_text())
    (script,) = [f for f in userdata["write_files"] if f["path"] == "/install_runner.sh"]
    return base64.b64decode(script["content"]).decode()


def _render_case(case: Path) -> str:
    bootstrap = json.loads(case.read_text())
    source = base64.b64decode(bootstrap["extra_specs"]["runner_install_template"]).decode()
    return render(source, install_params(bootstrap))


@pytest.mark.parametrize("case", _template_cases("[ts]*.json"), ids=lambda p: p.stem)
def test_conformance_case_renders_byte_identical(case: Path) -> None:
    assert _render_case(case) == _expected_script(case)


def test_template_conformance_cases_are_present() -> None:
    assert len(_template_cases("t*.json")) == 20
    assert len(_template_cases("s01*.json")) == 1


def test_seed_template_as_plain_text_matches_s01() -> None:
    case = CASES / "s01_seed_example_base64.json"
    source = (CONFORMANCE / "seed_runner_install_template.txt").read_text()
    assert render(source, install_params(json.loads(case.read_text()))) == _expected_script(case)


@pytest.mark.parametrize(
    ("case", "line"),
    [
        ("e08_template_parse_error", ":3:"),
        ("e09_template_unknown_field", ":2:8:"),
        ("e10_template_unknown_function", ":1:"),
        ("e11_template_end_without_if", ":1:"),
        ("e12_template_undefined_template", ":1:12:"),
    ],
)
def test_conformance_error_case_fails_with_its_line(case: str, line: str) -> None:
    with pytest.raises(TemplateError) as raised:
        _render_case(CASES / f"{case}.json")
    message = str(raised.value)
    assert line in message
    assert message in (CASES / f"{case}.error").read_text()
    assert "\n" not in message

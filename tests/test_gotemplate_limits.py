"""Template cost bounds: the adversarial template corpus, run in-process and as a subprocess.

Each case in testdata/adversarial/templates must end with its expected exit code well
within the render budget, with one short stderr line.  The CPU assertions are generous
(the machine is shared); benches/ measure the real 2 s / 256 MB budget.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from garm_provider_lxd.errors import TemplateError
from garm_provider_lxd.gotemplate import MAX_MESSAGE, GoStruct, render
from garm_provider_lxd.specs import parse_extra_specs
from garm_provider_lxd.userdata import build_user_data

CORPUS = Path(__file__).resolve().parent.parent / "testdata" / "adversarial" / "templates"
CASES = sorted(CORPUS.glob("*.json"))
TIMEOUT = 60
GENEROUS_CPU_SECONDS = 10.0
MAX_LINE = 500

STANDARD_BOOTSTRAP: dict[str, Any] = {
    "name": "garm-limits",
    "os_type": "linux",
    "arch": "amd64",
    "repo_url": "https://github.com/example/repo",
    "metadata-url": "https://garm.example.com/api/v1/metadata",
    "callback-url": "https://garm.example.com/api/v1/callbacks",
    "instance-token": "tok",
    "labels": ["linux"],
    "tools": [
        {
            "os": "linux",
            "architecture": "x64",
            "download_url": "https://example.com/r.tgz",
            "filename": "r.tgz",
        }
    ],
    "extra_specs": {},
}


def _set_path(document: dict[str, Any], dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        document = document.setdefault(key, {})
    document[last] = value


def bootstrap_for(case: dict[str, Any]) -> dict[str, Any]:
    """Build a case's bootstrap: merges, then generated values, as the corpus format says."""
    boot = copy.deepcopy(STANDARD_BOOTSTRAP)
    boot.update(copy.deepcopy(case.get("bootstrap", {})))
    boot["extra_specs"] = {**boot.get("extra_specs", {}), **case.get("extra_specs", {})}
    for dotted, parts in case.get("generate", {}).items():
        _set_path(boot, dotted, "".join(text * count for text, count in parts))
    for dotted, spec in case.get("generate_map", {}).items():
        mapping = {spec["key"].format(i=i): spec["value"] for i in range(spec["count"])}
        _set_path(boot, dotted, mapping)
    return boot


def load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return case


def provider_command() -> list[str]:
    return [sys.executable, "-m", "garm_provider_lxd", "userdata"]


def test_corpus_is_complete() -> None:
    assert len(CASES) >= 20
    for path in CASES:
        case = load(path)
        assert case["via"] == "userdata"
        assert case["about"] and "\n" not in case["about"]
        assert case["expect_exit"] in (0, 1)
        stdin = json.dumps(bootstrap_for(case)).encode()
        assert len(stdin) <= 4 << 20, path.name


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case_in_process(path: Path) -> None:
    case = load(path)
    boot = bootstrap_for(case)
    started = time.process_time()
    try:
        build_user_data(boot, parse_extra_specs(boot["extra_specs"]))
        outcome, message = 0, ""
    except TemplateError as err:
        outcome, message = 1, str(err)
    spent = time.process_time() - started
    assert outcome == case["expect_exit"], message
    assert spent < GENEROUS_CPU_SECONDS
    assert len(message) <= MAX_MESSAGE and "\n" not in message
    assert case.get("expect_stderr", "") in message


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case_via_userdata_subprocess(path: Path) -> None:
    case = load(path)
    stdin = json.dumps(bootstrap_for(case)).encode()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        provider_command(),
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == case["expect_exit"], stderr
    assert cpu < GENEROUS_CPU_SECONDS
    if result.returncode:
        assert result.stdout == b""
        assert stderr.count("\n") == 1 and stderr.endswith("\n")
        assert len(stderr) <= MAX_LINE
        assert case.get("expect_stderr", "") in stderr
    else:
        assert stderr == ""
        assert result.stdout.startswith(b"#cloud-config\n")


def test_error_messages_never_show_extra_context_values() -> None:
    secret = "s3cr3t-" + "x" * 2000
    data = GoStruct("cloudconfig.InstallRunnerParams", {"ExtraContext": {"k": secret}})
    for source in (
        "{{range .ExtraContext.k}}{{end}}",
        "{{index .ExtraContext.k 99999}}",
        "{{.ExtraContext.k.Field}}",
        "{{printf `%d` .ExtraContext.k | len | slice}}",
        '{{$x := .ExtraContext.k}}{{template "nope" $x}}',
    ):
        with pytest.raises(TemplateError) as caught:
            render(source, data)
        assert "s3cr3t" not in str(caught.value), source
        assert len(str(caught.value)) <= MAX_MESSAGE


def test_long_node_text_is_cut_with_an_ellipsis() -> None:
    source = "{{range 100}}" + "body " * 10_000 + "{{end}}"
    with pytest.raises(TemplateError) as caught:
        render(source, None)
    message = str(caught.value)
    assert message.startswith('template: :1:13: executing "" at <body body body')
    assert "...>: output exceeds the limit of 1048576 bytes" in message
    assert len(message) <= MAX_MESSAGE


def test_short_error_messages_are_unchanged() -> None:
    with pytest.raises(TemplateError) as caught:
        render('{{range 2}}{{template "x"}}{{end}}', None)
    assert str(caught.value) == (
        'template: :1:22: executing "" at <{{template "x"}}>: template "x" not defined'
    )


def test_parsing_is_charged_to_the_step_budget() -> None:
    assert render("{{1}}" * 100, None, max_steps=1_000) == "1" * 100
    with pytest.raises(TemplateError, match="parsing exceeded the limit of 1000 evaluation steps"):
        render("{{1}}" * 1_000, None, max_steps=1_000)


def test_source_size_cap() -> None:
    assert render("x" * 100, None, max_source=100) == "x" * 100
    with pytest.raises(
        TemplateError, match="the template is 101 bytes, more than the limit of 100"
    ):
        render("x" * 101, None, max_source=100)


def test_map_lookups_do_not_scale_with_the_map() -> None:
    # 20,000 iterations, each with three lookups in a 20,000-key map: quadratic before.
    mapping = {f"k{i:05d}": "v" for i in range(20_000)}
    source = (
        "{{range $k, $v := .}}{{if ne (index $ $k) $.k00001}}{{$v}}{{end}}{{$x := len $}}{{end}}"
    )
    started = time.process_time()
    assert render(source, mapping) == ""
    assert time.process_time() - started < GENEROUS_CPU_SECONDS


def test_nested_range_over_a_map_sorts_it_once() -> None:
    mapping = {f"k{i}": str(i) for i in range(20_000)}
    source = "{{range .}}{{range $}}{{break}}{{end}}{{end}}"
    started = time.process_time()
    assert render(source, mapping) == ""
    assert time.process_time() - started < GENEROUS_CPU_SECONDS


@pytest.mark.parametrize(
    "expression",
    [
        "index $s 999999",
        "len $s",
        "slice $s 1",
        "js $s",
        "urlquery $s",
        "html $s",
        "print $s",
        'printf "%q" $s',
        "eq $s $s",
        "lt $s $s",
    ],
)
def test_builtins_are_charged_by_input_size(expression: str) -> None:
    data = {"s": "x" * 1_000_000}
    source = "{{$s := .s}}{{range 1000000}}{{$x := " + expression + "}}{{end}}"
    started = time.process_time()
    with pytest.raises(TemplateError, match=r"evaluation steps|result exceeds"):
        render(source, data)
    assert time.process_time() - started < GENEROUS_CPU_SECONDS


def test_variable_lookups_are_charged_by_the_scope_searched() -> None:
    source = "{{$a := 1}}" * 10_000 + "{{range 1000000}}{{$}}{{end}}"
    with pytest.raises(TemplateError, match="evaluation steps"):
        render(source, None)

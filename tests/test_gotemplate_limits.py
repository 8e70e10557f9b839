"""Template cost bounds: the adversarial template corpus rendered in-process, and each meter.

Each case in testdata/adversarial/templates must end with its expected outcome well within the
render budget, with one short message. tests/test_bad_input_corpus.py runs the same cases as whole
processes; the CPU assertion here is generous (the machine is shared), and
benches/bench_adversarial.py measures the real 2 s / 256 MB bound.
"""

from __future__ import annotations

import sys
import time

import pytest
from conftest import REPO_ROOT

from garm_provider_lxd.bootstrap import parse_bootstrap
from garm_provider_lxd.errors import TemplateError
from garm_provider_lxd.gotemplate import MAX_MESSAGE, GoStruct, render
from garm_provider_lxd.specs import parse_extra_specs
from garm_provider_lxd.userdata import build_user_data

sys.path.insert(0, str(REPO_ROOT / "testdata"))
from adversarial_corpus import Case, build_bootstrap, load_cases

CASES = [case for case in load_cases() if case.name.startswith("templates/")]
GENEROUS_CPU_SECONDS = 10.0
STDIN_CAP = 4 << 20


def test_corpus_is_complete() -> None:
    assert len(CASES) >= 20
    for case in CASES:
        assert case.via == "userdata", case.name
        assert "\n" not in case.about
        stdin = json_size(build_bootstrap(case, "garm-limits"))
        assert stdin <= STDIN_CAP, case.name


def json_size(value: object) -> int:
    """Bytes of value as GARM's compact JSON."""
    from garm_provider_lxd._native import json_dumps

    return len(json_dumps(value))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_in_process(case: Case) -> None:
    boot = build_bootstrap(case, "garm-limits")
    started = time.process_time()
    try:
        build_user_data(parse_bootstrap(boot), parse_extra_specs(boot["extra_specs"]))
        outcome, message = 0, ""
    except TemplateError as err:
        outcome, message = 1, str(err)
    spent = time.process_time() - started
    assert outcome == case.expect_exit, message
    assert spent < GENEROUS_CPU_SECONDS
    assert len(message) <= MAX_MESSAGE and "\n" not in message
    assert case.expect_stderr in message


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

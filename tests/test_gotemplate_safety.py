"""Template safety: Python objects stay out of reach; output, steps and depth are bounded."""

from __future__ import annotations

import pytest

from garm_provider_lxd.errors import TemplateError
from garm_provider_lxd.gotemplate import GoStruct, render


@pytest.mark.parametrize(
    "source",
    [
        "{{.__class__}}",
        "{{.fields}}",
        "{{.type_name}}",
        "{{.__init__.__globals__}}",
        "{{.__dict__}}",
    ],
)
def test_no_python_attribute_is_reachable(source: str) -> None:
    with pytest.raises(TemplateError, match="can't evaluate field"):
        render(source, GoStruct("t.T", {"A": "a"}))
    assert render(source, {"A": "a"}) == "<no value>"


class _Opaque:
    """A Python object that must stay opaque to templates."""

    secret = "hidden"

    def __str__(self) -> str:
        raise AssertionError("templates must not call into Python objects")


def test_foreign_python_objects_are_opaque() -> None:
    data = {"obj": _Opaque()}
    with pytest.raises(TemplateError, match="can't evaluate field secret"):
        render("{{.obj.secret}}", data)
    assert "hidden" not in render("{{printf `%v` .obj}}", data)


def test_call_is_an_error_without_functions_in_data() -> None:
    with pytest.raises(TemplateError, match=r"error calling call: non-function \.A of type string"):
        render("{{call .A}}", {"A": "x"})
    with pytest.raises(TemplateError, match="error calling call: call of nil"):
        render("{{call .Missing}}", {})


def test_output_limit() -> None:
    assert render("{{range 10}}ab{{end}}", None, max_output=20) == "ab" * 10
    with pytest.raises(TemplateError, match="output exceeds the limit of 19 bytes"):
        render("{{range 10}}ab{{end}}", None, max_output=19)
    with pytest.raises(TemplateError, match="output exceeds the limit of 3 bytes"):
        render("{{`\u00e9\u00e9`}}", None, max_output=3)


def test_intermediate_strings_are_bounded_by_the_output_limit() -> None:
    source = '{{$x := "ab"}}{{range 64}}{{$x = printf "%s%s" $x $x}}{{end}}{{len $x}}'
    with pytest.raises(TemplateError, match="error calling printf: result exceeds 4096 bytes"):
        render(source, None, max_output=4096)


def test_step_limit_counts_loop_iterations() -> None:
    assert render("{{range 40}}{{end}}", None, max_steps=100) == ""
    with pytest.raises(TemplateError, match="exceeded the limit of 100 evaluation steps"):
        render("{{range 1000000000}}{{end}}", None, max_steps=100)
    with pytest.raises(TemplateError, match="evaluation steps"):
        render("{{range 1000}}{{range 1000}}{{end}}{{end}}", None, max_steps=10_000)


def test_recursive_template_hits_the_depth_limit() -> None:
    source = '{{define "r"}}x{{template "r" .}}{{end}}{{template "r" .}}'
    with pytest.raises(TemplateError, match=r"exceeded maximum template depth \(10\)"):
        render(source, None, max_depth=10)


def test_bounded_recursion_within_the_depth_limit_works() -> None:
    source = (
        '{{define "count"}}{{if lt (len .) 5}}{{len .}}'
        '{{template "count" (printf "%s." .)}}{{end}}{{end}}{{template "count" ""}}'
    )
    assert render(source, None) == "01234"


def test_deep_nesting_is_rejected_at_parse_time() -> None:
    with pytest.raises(TemplateError, match="max expression depth exceeded"):
        render("{{" + "(" * 5000 + "1" + ")" * 5000 + "}}", None)
    with pytest.raises(TemplateError, match="max nesting depth exceeded"):
        render("{{if 1}}" * 500 + "{{end}}" * 500, None)
    assert render("{{if 1}}" * 20 + "x" + "{{end}}" * 20, None) == "x"


@pytest.mark.parametrize("width", ["%999999999d", "%99999999d", "%.99999999f", "%[99999999999]d"])
def test_huge_printf_widths_do_not_allocate(width: str) -> None:
    result = render("{{printf `" + width + "` 5}}", None)
    assert len(result) < 100
    assert result.startswith("%!")


def test_large_printf_width_counts_against_output() -> None:
    with pytest.raises(TemplateError, match="output exceeds"):
        render("{{printf `%999999d` 1}}{{printf `%999999d` 1}}", None)

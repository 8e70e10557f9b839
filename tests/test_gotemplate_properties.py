"""Property tests: any template either renders or fails with TemplateError, within limits."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garm_provider_lxd.errors import TemplateError
from garm_provider_lxd.gotemplate import GoStruct, render

PARAMS = GoStruct(
    "cloudconfig.InstallRunnerParams",
    {
        "RunnerName": "garm-1",
        "RunnerLabels": "a,b",
        "UseJITConfig": True,
        "EnableBootDebug": False,
        "ExtraContext": {"A": "1", "B": "x y"},
    },
)
MAX_OUTPUT = 4096

_OPERANDS = [
    ".",
    "$",
    ".RunnerName",
    ".ExtraContext",
    ".ExtraContext.A",
    ".Nope",
    "1",
    "-3",
    "2.5",
    "0x10",
    "'a'",
    '"s"',
    "`r`",
    "true",
    "nil",
    "1000000000",
    '"%999999999d"',
    '"%99999d"',
    '"%v%v%v"',
    '"%[9]q"',
]
_FUNCTIONS = [
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "call",
]
_RAW = ["{{", "}}", "{{-", "-}}", "(", ")", "|", ":=", "=", ",", "$x", " ", "\n", "/*", "*/"]
_RAW += ["{{end}}", "{{else}}", "{{break}}", "{{continue}}", '{{template "t" .}}']
_RAW += ['{{define "t"}}{{template "t" .}}{{end}}', '{{block "b" .}}', "\\", '"', "'", "`"]


@st.composite
def _pipelines(draw: st.DrawFn) -> str:
    words = draw(
        st.lists(st.sampled_from(_OPERANDS + _FUNCTIONS), min_size=1, max_size=4),
    )
    text = " ".join(words)
    if draw(st.booleans()):
        text = "(" + text + ")"
    if draw(st.booleans()):
        text += " | " + draw(st.sampled_from(_FUNCTIONS))
    return text


@st.composite
def _templates(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 5))
        if kind == 0:
            parts.append(draw(st.text(max_size=8)))
        elif kind == 1:
            parts.append(draw(st.sampled_from(_RAW)))
        elif kind in (2, 3) or depth >= 2:
            left = draw(st.sampled_from(["{{", "{{- "]))
            right = draw(st.sampled_from(["}}", " -}}"]))
            parts.append(left + draw(_pipelines()) + right)
        else:
            keyword = draw(st.sampled_from(["if", "with", "range", "range $i, $v :="]))
            body = draw(_templates(depth + 1))
            other = draw(st.sampled_from(["", "{{else}}", "{{break}}", "{{continue}}"]))
            pipe = draw(_pipelines())
            parts.append("{{" + keyword + " " + pipe + "}}" + body + other + "{{end}}")
    return "".join(parts)


def _render_or_template_error(source: str, data: object = PARAMS) -> str | None:
    try:
        return render(source, data, max_output=MAX_OUTPUT, max_steps=5_000, max_depth=20)
    except TemplateError as err:
        assert "\n" not in str(err)
        return None


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(_templates())
def test_generated_templates_render_or_raise_template_error(source: str) -> None:
    output = _render_or_template_error(source)
    if output is not None:
        assert len(output.encode()) <= MAX_OUTPUT


@settings(max_examples=150, deadline=2000)
@given(st.text(max_size=60))
def test_arbitrary_text_never_escapes_as_another_exception(source: str) -> None:
    _render_or_template_error(source)
    _render_or_template_error("{{" + source + "}}")


@settings(max_examples=100, deadline=2000)
@given(st.text(max_size=40).filter(lambda s: "{{" not in s))
def test_text_without_actions_is_copied(text: str) -> None:
    assert render(text, None) == text


@settings(max_examples=100, deadline=2000)
@given(st.text(alphabet=" \t\r\n", max_size=5), st.text(alphabet=" \t\r\n", max_size=5))
def test_trim_markers_remove_surrounding_white_space(before: str, after: str) -> None:
    assert render("a" + before + "{{- 1 -}}" + after + "b", None) == "a1b"


@settings(max_examples=100, deadline=2000)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30))
def test_quoted_strings_read_back_as_the_same_string(text: str) -> None:
    quoted = render('{{printf "%q" .S}}', {"S": text})
    assert render("{{" + quoted + "}}", None) == text


@settings(max_examples=100, deadline=2000)
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integer_verbs_match_python_formatting(number: int) -> None:
    expected = f"{number}|{number:x}|{number:X}|{number:o}|{number:b}"
    assert render('{{printf "%d|%x|%X|%o|%b" . . . . .}}', number) == expected


@settings(max_examples=100, deadline=2000)
@given(st.dictionaries(st.text(max_size=5), st.integers(-5, 5), max_size=6))
def test_range_over_a_map_visits_keys_in_sorted_order(mapping: dict[str, int]) -> None:
    rendered = render("{{range $k, $v := .}}{{$k}}={{$v}};{{end}}", mapping)
    keys = sorted(mapping, key=lambda k: k.encode())
    assert rendered == "".join(f"{k}={mapping[k]};" for k in keys)


@settings(max_examples=50, deadline=2000)
@given(st.integers(2, 6), st.integers(10, 10_000))
def test_nested_ranges_stop_at_the_step_limit(levels: int, count: int) -> None:
    source = ("{{range " + str(count) + "}}") * levels + "x" + "{{end}}" * levels
    try:
        output = render(source, None, max_steps=2_000, max_output=1 << 20)
    except TemplateError as err:
        assert "evaluation steps" in str(err)
    else:
        assert output == "x" * count**levels


@settings(max_examples=30, deadline=2000)
@given(st.integers(1, 50))
def test_recursive_templates_stop_at_the_depth_limit(depth: int) -> None:
    source = '{{define "r"}}.{{template "r" .}}{{end}}{{template "r" .}}'
    try:
        render(source, None, max_depth=depth)
    except TemplateError as err:
        assert f"exceeded maximum template depth ({depth})" in str(err)
    else:
        raise AssertionError("unbounded recursion rendered")


@settings(max_examples=50, deadline=2000)
@given(st.integers(100_000_000, 10**12), st.sampled_from("dsvxfqe"))
def test_huge_printf_widths_and_precisions_are_refused(size: int, verb: str) -> None:
    for spec in (f"%{size}{verb}", f"%.{size}{verb}", f"%{size}.{size}{verb}"):
        output = render("{{printf `" + spec + "` 5}}", None)
        assert output.startswith("%!")
        assert len(output) < 200


@settings(max_examples=50, deadline=2000)
@given(st.integers(0, 2_000_000), st.sampled_from("dsvxfqe"))
def test_large_printf_widths_stay_within_the_output_limit(size: int, verb: str) -> None:
    for spec in (f"%{size}{verb}", f"%.{size}{verb}"):
        output = _render_or_template_error("{{printf `" + spec + "` 5}}", None)
        assert output is None or len(output.encode()) <= MAX_OUTPUT

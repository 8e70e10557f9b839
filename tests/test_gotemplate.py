"""Go text/template compatibility of garm_provider_lxd.gotemplate.

The GO_CASES and GO_ERRORS expectations are the output and error text of Go 1.23's
text/template for the same template and data (a map[string]interface{} built from DATA,
or the cloudconfig.InstallRunnerParams struct); the conformance cases come from the
reference provider.
"""

# The Go expectation tables hold one template and Go's output per line, unwrapped so each
# case reads as Go printed it: long lines are deliberate here.
# ruff: noqa: E501

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from garm_provider_lxd.errors import ProviderError, TemplateError
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


DATA: dict[str, object] = {
    "s": "h\u00e9llo",
    "n": 42,
    "f": 3.5,
    "b": True,
    "l": ["a", "b"],
    "li": [3, 1, 2],
    "m": {"y": "2", "x": "1"},
    "mi": {"b": 2, "a": 1},
    "e": [],
    "em": {},
    "nil": None,
    "u": "a\x00b<>&'\"=\\\t\u2028",
}

GO_CASES = [
    (
        "{{.s}}|{{.n}}|{{.f}}|{{.b}}|{{.l}}|{{.m}}|{{.mi}}|{{.e}}|{{.em}}",
        "héllo|42|3.5|true|[a b]|map[x:1 y:2]|map[a:1 b:2]|[]|map[]",
    ),
    (
        '{{.missing}}|{{.m.zz}}|{{.nil}}|{{index .m "zz"}}|{{index .mi "zz"}}|{{.missing.deeper}}',
        "<no value>|<no value>|<no value>||0|<no value>",
    ),
    (
        '{{index .l 1}} {{index .li 0}} {{index .s 1}} {{index "abc" 0 | printf "%T %c"}}',
        "b 3 195 uint8 %!c(MISSING)",
    ),
    (
        '{{slice .s 1 3}}|{{slice .l 1}}|{{slice .li 0 1 2}}|{{printf "%q" (slice .s 1 2)}}',
        'é|[b]|[3]|"\\xc3"',
    ),
    ('{{len .s}} {{len .l}} {{len .m}} {{len .e}} {{len ""}}', "6 2 2 0 0"),
    (
        '{{not 0}} {{not 1}} {{not ""}} {{not .e}} {{not .nil}} {{not .missing}}',
        "true false true true true true",
    ),
    (
        '{{and 1 2}} {{and 0 2}} {{or 0 ""}} {{or .missing 5}} {{and .missing}} {{"x" | and 1}} {{0 | or 0}}',
        "2 0  5 <no value> x 0",
    ),
    (
        '{{eq 1 1}} {{eq 1 2 1}} {{eq .n 42}} {{eq .s "héllo"}} {{eq 1.5 1.5}} {{eq nil nil}} {{eq "a" nil}} {{eq (index "a" 0) 97}}',
        "true true true true true true false true",
    ),
    (
        '{{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1.5 2.5}} {{lt "héllo" "hz"}} {{lt -1 (index "a" 0)}}',
        "true true true true false false true",
    ),
    (
        '{{html .u}}|{{html nil}}|{{html 1 2}}|{{html "a" "b"}}|{{js .u}}|{{js "é\\u0001"}}|{{urlquery .u}}|{{urlquery "a b" 1}}',
        "a�b&lt;&gt;&amp;&#39;&#34;=\\\t\u2028|&lt;no value&gt;|1 2|ab|a\\u0000b\\u003C\\u003E\\u0026\\'\\\"\\u003D\\\\\\u0009\\u2028|é\\u0001|a%00b%3C%3E%26%27%22%3D%5C%09%E2%80%A8|a+b1",
    ),
    (
        '{{print 1 2 "a" "b" 3 nil}}|{{println 1 "a"}}|{{print}}|{{print .l .m .nil}}',
        "1 2ab3 <nil>|1 a\n||[a b] map[x:1 y:2] <nil>",
    ),
    (
        "{{if .b}}T{{else}}F{{end}} {{if .e}}T{{else if .l}}L{{else}}F{{end}} {{if .nil}}T{{else}}F{{end}} {{if .em}}x{{end}}",
        "T L F ",
    ),
    (
        "{{with .s}}[{{.}}]{{end}} {{with .e}}x{{else}}empty{{end}} {{with .missing}}x{{else with .l}}{{.}}{{end}} {{with $x := .n}}{{$x}}{{end}}",
        "[héllo] empty [a b] 42",
    ),
    (
        "{{range .l}}[{{.}}]{{end}} {{range $i, $v := .li}}{{$i}}={{$v}},{{end}} {{range $k, $v := .mi}}{{$k}}:{{$v}} {{end}}",
        "[a][b] 0=3,1=1,2=2, a:1 b:2 ",
    ),
    (
        "{{range .e}}x{{else}}empty{{end}} {{range .nil}}x{{else}}nil{{end}} {{range .missing}}x{{else}}missing{{end}}",
        "empty nil missing",
    ),
    (
        '{{range $k, $v := .m}}{{if eq $k "y"}}{{break}}{{end}}{{$v}}{{end}}|{{range .li}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}',
        "1|32",
    ),
    (
        "{{range .l}}{{range $.e}}{{else}}{{break}}x{{end}}{{.}}{{end}}|{{range .l}}{{range $.e}}{{else}}{{continue}}x{{end}}{{.}}{{end}}",
        "ab|",
    ),
    (
        "{{$x := 1}}{{range $x = .li}}{{end}}{{$x}}|{{$i := 0}}{{$v := 0}}{{range $i, $v = .l}}{{end}}{{$i}}{{$v}}",
        "2|1b",
    ),
    (
        "{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}|{{$x := 1}}{{if true}}{{$x = 2}}{{$x}}{{end}}{{$x}}",
        "21|22",
    ),
    (
        "{{$}}|{{$.s}}|{{with .m}}{{$.s}}{{.x}}{{end}}",
        "map[b:true e:[] em:map[] f:3.5 l:[a b] li:[3 1 2] m:map[x:1 y:2] mi:map[a:1 b:2] n:42 nil:<nil> s:héllo u:a\x00b<>&'\"=\\\t\u2028]|héllo|héllo1",
    ),
    (
        '{{"a" | printf "%s-%s" "b"}} {{1 | printf "%d"}} {{.s | len}} {{(.s)}} {{(len .s)}} {{(index .m "x")}}',
        "b-a 1 6 héllo 6 1",
    ),
    (
        '{{define "a"}}A{{.}}{{end}}{{template "a" 1}}{{template "a"}}{{template "a" .s}}',
        "A1A<no value>Ahéllo",
    ),
    (
        '{{block "b" .s}}B{{.}}{{end}}|{{define "x"}}1{{end}}{{define "x"}} {{end}}{{template "x"}}|{{define "y"}} {{end}}{{define "y"}}2{{end}}{{template "y"}}',
        "Bhéllo|1|2",
    ),
    ('{{define ""}}top{{end}}', "top"),
    ("{{ .s }} {{- .s -}} {{ .s }}", "héllohéllohéllo"),
    ("a  {{- 3 -}}  b {{-3}} {{- -3 -}} x", "a3b -3-3x"),
    ("{{/* c */}} x {{- /* c */ -}} y {{/*c*/ -}}   z", " xy z"),
    (
        "{{ `raw\\n{{x}}` }}|{{ \"\\x41\\101\\u00e9\\U0001F600\\t\" }}|{{ 'a' }} {{ '\\n' }} {{ '\\'' }}",
        "raw\\n{{x}}|AAé😀\t|97 10 39",
    ),
    (
        "{{ 1.0 }} {{ 1e3 }} {{ 0x10 }} {{ 0o10 }} {{ 010 }} {{ 0b10 }} {{ 1_000 }} {{ 0x1p4 }} {{ .5 }} {{ 5. }} {{ +5 }} {{ -0x1E }} {{ 1i }} {{ 2+3i }}",
        "1 1000 16 8 8 2 1000 16 0.5 5 5 -30 (0+1i) (2+3i)",
    ),
    (
        '{{ printf "%T %T %T %T %T %T" 1 1.0 \'a\' "s" 0x1E 1e3 }}',
        "int float64 int string int float64",
    ),
    ("{{\n.s\n}}{{ if\n.b }}y{{ end }}\n", "hélloy\n"),
    (
        '{{printf "%v|%+v|%#v|%T" . . . .}}',
        'map[b:true e:[] em:map[] f:3.5 l:[a b] li:[3 1 2] m:map[x:1 y:2] mi:map[a:1 b:2] n:42 nil:<nil> s:héllo u:a\x00b<>&\'"=\\\t\u2028]|map[b:true e:[] em:map[] f:3.5 l:[a b] li:[3 1 2] m:map[x:1 y:2] mi:map[a:1 b:2] n:42 nil:<nil> s:héllo u:a\x00b<>&\'"=\\\t\u2028]|map[string]interface {}{"b":true, "e":[]string{}, "em":map[string]string{}, "f":3.5, "l":[]string{"a", "b"}, "li":[]int{3, 1, 2}, "m":map[string]string{"x":"1", "y":"2"}, "mi":map[string]int{"a":1, "b":2}, "n":42, "nil":interface {}(nil), "s":"héllo", "u":"a\\x00b<>&\'\\"=\\\\\\t\\u2028"}|map[string]interface {}',
    ),
    (
        '{{printf "%5d|%-5d|%05d|%+d|% d|%x|%X|%#x|%o|%#o|%O|%b|%#b|%c|%U|%#U|%q" 42 42 42 42 42 255 255 255 8 8 8 5 5 65 65 233 65}}',
        "   42|42   |00042|+42| 42|ff|FF|0xff|10|010|0o10|101|0b101|A|U+0041|U+00E9 'é'|'A'",
    ),
    (
        '{{printf "%.3d|%.0d|%5.0d|%08b|%x|%c|%U|%q" 7 0 0 5 -255 -1 -1 1114112}}',
        "007||     |00000101|-ff|�|U+FFFFFFFFFFFFFFFF|'�'",
    ),
    (
        '{{printf "%f|%.2f|%8.3f|%-8.3f|%08.3f|%+.1e|%e|%E|%g|%G|%.3g|%#g|%#.3g" 3.14159 3.14159 3.14159 3.14159 -3.14159 3.14159 1234.5678 0.00001234 1e21 1e-7 1234.5678 2.0 2.0}}',
        "3.141590|3.14|   3.142|3.142   |-003.142|+3.1e+00|1.234568e+03|1.234000E-05|1e+21|1E-07|1.23e+03|2.00000|2.00",
    ),
    (
        '{{printf "%v %v %v %v %v %v %v %v" 1e20 1e21 1e-4 1e-5 100000.0 1234567.0 123456789.0 -0.0}}',
        "1e+20 1e+21 0.0001 1e-05 100000 1.234567e+06 1.23456789e+08 -0",
    ),
    (
        '{{printf "%x|%X|%.2x|%b|%#.1x|%x|%b" 3.5 -3.5 1.0 1.0 1.96875 5e-324 5e-324}}',
        "0x1.cp+01|-0X1.CP+01|0x1.00p+00|4503599627370496p-52|0x1.0p+01|0x1p-1074|1p-1074",
    ),
    (
        '{{printf "%.0f %.0f %.1f %.20f %.30g %.17g %.3e" 2.5 3.5 0.05 0.1 0.1 1e16 9.9999}}',
        "2 4 0.1 0.10000000000000000555 0.100000000000000005551115123126 10000000000000000 1.000e+01",
    ),
    (
        '{{printf "%s|%q|%#q|%+q|%x|% X|%# x|%.2s|%5.2s|%-8q|%010s|%x|%5x|" "héllo" "héllo" "a`b" "héllo" "héllo" "héllo" "hi" "héllo" "héllo" "a" "ab" "" ""}}',
        'héllo|"héllo"|"a`b"|"h\\u00e9llo"|68c3a96c6c6f|68 C3 A9 6C 6C 6F|0x68 0x69|hé|   hé|"a"     |00000000ab||     |',
    ),
    (
        '{{printf "%t|%5t|%v|%d|%s|%v|%d|%T" true false true true 42 nil nil nil}}',
        "true|false|true|%!d(bool=true)|%!s(int=42)|<nil>|%!d(<nil>)|<nil>",
    ),
    (
        '{{printf "%d %d" 1}}|{{printf "%d" 1 2 "x" nil}}|{{printf "%[2]d %[1]d" 1 2}}|{{printf "%[3]d" 1 2}}|{{printf "%[0]d" 1}}',
        "1 %!d(MISSING)|1%!(EXTRA int=2, string=x, <nil>)|2 1|%!d(BADINDEX)|%!d(BADINDEX)",
    ),
    (
        '{{printf "%*d|%-*d|%*d|%.*f|%*d|%.*d" 5 42 5 42 -5 42 2 3.14159 "x" 42 -1 42}}',
        "   42|42   |42   |3.14|%!(BADWIDTH)42|%!(BADPREC)42",
    ),
    (
        '{{printf "%!"}}|{{printf "%"}}|{{printf "abc%"}}|{{printf "%5"}}|{{printf "%.5"}}|{{printf "%[1]"}}|{{printf "%z" 1}}|{{printf "%w" 1}}',
        "%!!(MISSING)|%!(NOVERB)|abc%!(NOVERB)|%!(NOVERB)|%!(NOVERB)|%!(NOVERB)|%!z(int=1)|%!w(int=1)",
    ),
    (
        '{{printf "%999999999d" 5}}|{{printf "%[1]*d" 5 3}}|{{printf "%[2]*[1]d" 12 5}}|{{printf "%-05d|%0-5d|" 42 42}}',
        "%!(NOVERB)%!(EXTRA int=5)|    3|   12|42   |42   |",
    ),
    (
        '{{printf "%v|%d|%s|%6.2f|%x|%q" .l .m .mi .li .li .l}}',
        '[a b]|map[%!d(string=x):%!d(string=1) %!d(string=y):%!d(string=2)]|map[a:%!s(int=1) b:%!s(int=2)]|[%!f(int=    03) %!f(int=    01) %!f(int=    02)]|[3 1 2]|["a" "b"]',
    ),
    (
        '{{printf "%v|%#v|%+v" .m .m .m}}|{{printf "%#v|%#v|%#v" .e .em .nil}}',
        'map[x:1 y:2]|map[string]string{"x":"1", "y":"2"}|map[x:1 y:2]|[]string{}|map[string]string{}|<nil>',
    ),
]


GO_ERRORS = [
    (
        "{{.Nope}}",
        'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type cloudconfig.InstallRunnerParams',
    ),
    (
        "{{.RunnerName.X}}",
        'template: :1:13: executing "" at <.RunnerName.X>: can\'t evaluate field X in type string',
    ),
    (
        "{{.ExtraContext.A.B}}",
        'template: :1:15: executing "" at <.ExtraContext.A.B>: can\'t evaluate field B in type string',
    ),
    (
        "{{.RunnerName 1}}",
        'template: :1:2: executing "" at <.RunnerName>: RunnerName has arguments but cannot be invoked as function',
    ),
    (
        "{{.ExtraContext.A 1}}",
        'template: :1:15: executing "" at <.ExtraContext.A>: A is not a method but has arguments',
    ),
    (
        "{{$x := 1}}{{$x 2}}",
        'template: :1:13: executing "" at <$x>: can\'t give argument to non-function $x',
    ),
    ("{{. 1}}", 'template: :1:2: executing "" at <.>: can\'t give argument to non-function .'),
    ("{{nil}}", 'template: :1:2: executing "" at <nil>: nil is not a command'),
    ("{{1 2}}", 'template: :1:2: executing "" at <1>: can\'t give argument to non-function 1'),
    ('{{"a" | "b"}}', "template: :1: non executable command in pipeline stage 2"),
    (
        "{{.RunnerName | .FileName}}",
        'template: :1:16: executing "" at <.FileName>: FileName has arguments but cannot be invoked as function',
    ),
    ("{{(1).x}}", 'template: :1:3: executing "" at <1>: can\'t evaluate field x in type int'),
    (
        "{{html.x}}",
        'template: :1:2: executing "" at <html>: can\'t evaluate field x in type string',
    ),
    ("{{(nil).x}}", 'template: :1:3: executing "" at <nil>: nil is not a command'),
    (
        "{{index .RunnerName 10}}",
        'template: :1:2: executing "" at <index .RunnerName 10>: error calling index: index out of range: 10',
    ),
    (
        "{{index .RunnerName 17}}",
        'template: :1:2: executing "" at <index .RunnerName 17>: error calling index: index out of range: 17',
    ),
    (
        "{{index .ExtraContext 1}}",
        'template: :1:2: executing "" at <index .ExtraContext 1>: error calling index: value has type int; should be string',
    ),
    (
        "{{index nil 1}}",
        'template: :1:2: executing "" at <index nil 1>: error calling index: index of untyped nil',
    ),
    (
        "{{index 5 1}}",
        'template: :1:2: executing "" at <index 5 1>: error calling index: can\'t index item of type int',
    ),
    (
        '{{index .RunnerName "a"}}',
        'template: :1:2: executing "" at <index .RunnerName "a">: error calling index: cannot index slice/array with type string',
    ),
    (
        "{{index .RunnerName -1}}",
        'template: :1:2: executing "" at <index .RunnerName -1>: error calling index: index out of range: -1',
    ),
    (
        "{{slice .RunnerName 1 2 3}}",
        'template: :1:2: executing "" at <slice .RunnerName 1 2 3>: error calling slice: cannot 3-index slice a string',
    ),
    (
        "{{slice .RunnerName 3 1}}",
        'template: :1:2: executing "" at <slice .RunnerName 3 1>: error calling slice: invalid slice index: 3 > 1',
    ),
    (
        "{{slice .RunnerName 1 99}}",
        'template: :1:2: executing "" at <slice .RunnerName 1 99>: error calling slice: index out of range: 99',
    ),
    (
        "{{slice 5 1}}",
        'template: :1:2: executing "" at <slice 5 1>: error calling slice: can\'t slice item of type int',
    ),
    (
        "{{slice nil}}",
        'template: :1:2: executing "" at <slice nil>: error calling slice: slice of untyped nil',
    ),
    ("{{len 5}}", 'template: :1:2: executing "" at <len 5>: error calling len: len of type int'),
    (
        "{{len nil}}",
        'template: :1:2: executing "" at <len nil>: error calling len: reflect: call of reflect.Value.Type on zero Value',
    ),
    (
        "{{len}}",
        'template: :1:2: executing "" at <len>: wrong number of args for len: want 1 got 0',
    ),
    (
        "{{len 1 2}}",
        'template: :1:2: executing "" at <len>: wrong number of args for len: want 1 got 2',
    ),
    (
        "{{and}}",
        'template: :1:2: executing "" at <and>: wrong number of args for and: want at least 1 got 0',
    ),
    (
        "{{eq 1}}",
        'template: :1:2: executing "" at <eq 1>: error calling eq: missing argument for comparison',
    ),
    (
        '{{eq 1 "a"}}',
        'template: :1:2: executing "" at <eq 1 "a">: error calling eq: incompatible types for comparison',
    ),
    (
        "{{eq 1 1.0}}",
        'template: :1:2: executing "" at <eq 1 1.0>: error calling eq: incompatible types for comparison',
    ),
    (
        "{{lt true false}}",
        'template: :1:2: executing "" at <lt true false>: error calling lt: invalid type for comparison',
    ),
    (
        '{{lt 1 "a"}}',
        'template: :1:2: executing "" at <lt 1 "a">: error calling lt: incompatible types for comparison',
    ),
    (
        "{{lt nil 1}}",
        'template: :1:2: executing "" at <lt nil 1>: error calling lt: invalid type for comparison',
    ),
    ("{{printf 5}}", 'template: :1:9: executing "" at <5>: expected string; found 5'),
    ("{{printf nil}}", 'template: :1:9: executing "" at <nil>: cannot assign nil to string'),
    (
        "{{printf .UseJITConfig}}",
        'template: :1:9: executing "" at <.UseJITConfig>: wrong type for value; expected string; got bool',
    ),
    (
        "{{printf .ExtraContext.Z}}",
        'template: :1:22: executing "" at <.ExtraContext.Z>: invalid value; expected string',
    ),
    (
        "{{call .RunnerName}}",
        'template: :1:2: executing "" at <call .RunnerName>: error calling call: non-function .RunnerName of type string',
    ),
    ("{{call nil}}", 'template: :1:2: executing "" at <call nil>: error calling call: call of nil'),
    (
        "{{call}}",
        'template: :1:2: executing "" at <call>: wrong number of args for call: want at least 1 got 0',
    ),
    (
        '{{template "nope"}}',
        'template: :1:11: executing "" at <{{template "nope"}}>: template "nope" not defined',
    ),
    (
        '{{define "x"}}1{{end}}{{define "x"}}2{{end}}',
        'template: :1: template: multiple definition of template "x"',
    ),
    ('{{template "x" | len}}', 'template: :1: unexpected "|" in template clause'),
    ("{{template x}}", 'template: :1: unexpected "x" in template clause'),
    ("{{define x}}{{end}}", 'template: :1: unexpected "x" in define clause'),
    ("{{if}}{{end}}", "template: :1: missing value for if"),
    ("{{if .UseJITConfig}}", "template: :1: unexpected EOF"),
    ("{{if 1}}{{else}}{{else}}{{end}}", "template: :1: expected end; found {{else}}"),
    ("{{range .ExtraContext}}{{else if 1}}{{end}}", "template: :1: unexpected <if> in input"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{continue}}", "template: :1: {{continue}} outside {{range}}"),
    ("{{range .ExtraContext}}{{break 1}}{{end}}", 'template: :1: unexpected "1" in {{break}}'),
    (
        "{{range .ExtraContext}}{{else}}{{break}}{{end}}",
        "template: :1: {{break}} outside {{range}}",
    ),
    (
        '{{range .ExtraContext}}{{define "z"}}{{end}}{{end}}',
        "template: :1: unexpected <define> in command",
    ),
    (
        "{{range $i, $v, $w := .ExtraContext}}{{end}}",
        "template: :1: too many declarations in range",
    ),
    (
        "{{range $i, 1 := .ExtraContext}}{{end}}",
        "template: :1: range can only initialize variables",
    ),
    ("{{with $i, $v := .ExtraContext}}{{end}}", "template: :1: too many declarations in with"),
    ("{{$x = 1}}", 'template: :1:7: executing "" at <1>: undefined variable: $x'),
    ("{{$x := }}", "template: :1: missing value for command"),
    ("{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{/* unclosed", "template: :1: unclosed comment"),
    ("{{/* c */ x}}", "template: :1: comment ends before closing delimiter"),
    ('{{ "unterminated }}', "template: :1: unterminated quoted string"),
    ("{{ 'ab' }}", "template: :1: malformed character constant: 'ab'"),
    ("{{ '' }}", "template: :1: invalid syntax"),
    ("{{ 'a }}", "template: :1: unterminated character constant"),
    ('{{ "\\q" }}', "template: :1: invalid syntax"),
    ("{{ 0x }}", 'template: :1: illegal number syntax: "0x"'),
    ("{{ 1e }}", 'template: :1: illegal number syntax: "1e"'),
    ("{{ 089 }}", 'template: :1: integer overflow: "089"'),
    ("{{ 99999999999999999999 }}", 'template: :1: integer overflow: "99999999999999999999"'),
    (
        "{{ 18446744073709551615 }}",
        'template: :1:3: executing "" at <18446744073709551615>: 18446744073709551615 overflows int',
    ),
    ("{{ 1.5.5 }}", 'template: :1: unexpected ".5" in operand'),
    ("{{ 3x }}", 'template: :1: bad number syntax: "3x"'),
    ("{{ .x-y }}", "template: :1: bad character U+002D '-'"),
    ("{{ @ }}", 'template: :1: unexpected "@" in command'),
    ("{{ ( }}", "template: :1: unclosed left paren"),
    ("{{ ) }}", "template: :1: unexpected right paren"),
    ("{{ (1 }}", "template: :1: unclosed left paren"),
    ("{{ | }}", 'template: :1: unexpected "|" in command'),
    ("{{ := }}", 'template: :1: unexpected ":=" in command'),
    ("{{ . . }}", 'template: :1:3: executing "" at <.>: can\'t give argument to non-function .'),
    ('{{ "a".x }}', 'template: :1: unexpected . after term "\\"a\\""'),
    ("{{ .. }}", "template: :1: unexpected <.> in operand"),
    ("{{}}", "template: :1: missing value for command"),
    ("{{ foo }}", 'template: :1: function "foo" not defined'),
    ("{{ `unterminated }}", "template: :1: unterminated raw quoted string"),
    ('{{ "\\xZZ" }}', "template: :1: invalid syntax"),
    ("{{ .Nope", "template: :1: unclosed action"),
]

PARAMS = GoStruct(
    "cloudconfig.InstallRunnerParams",
    {
        "FileName": "f.tgz",
        "DownloadURL": "https://x/y?a=b&c=d",
        "RunnerUsername": "runner",
        "RunnerGroup": "runner",
        "RepoURL": "https://github.com/o/r",
        "MetadataURL": "http://m",
        "RunnerName": "garm-1",
        "RunnerLabels": "a,b",
        "CallbackURL": "http://cb",
        "CallbackToken": "tok",
        "TempDownloadToken": "",
        "CABundle": "",
        "GitHubRunnerGroup": "",
        "EnableBootDebug": False,
        "UseJITConfig": True,
        "ExtraContext": {"A": "1", "B": "x y", "C": ""},
    },
)


@pytest.mark.parametrize(("source", "expected"), GO_CASES)
def test_renders_like_go(source: str, expected: str) -> None:
    assert render(source, DATA) == expected


@pytest.mark.parametrize(("source", "message"), GO_ERRORS)
def test_fails_like_go(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as raised:
        render(source, PARAMS)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{range 3}}{{.}}{{end}}", "012"),
        ("{{range $i := 2}}{{$i}}{{end}}", "01"),
        ("{{range -1}}x{{else}}none{{end}}", "none"),
        ("{{range 0}}x{{else}}none{{end}}", "none"),
        ("{{range $i := 5}}{{if eq $i 3}}{{break}}{{end}}{{$i}}{{end}}", "012"),
        ("{{range $i := 4}}{{if eq $i 1}}{{continue}}{{end}}{{$i}}{{end}}", "023"),
    ],
)
def test_range_over_integer_like_go_1_24(source: str, expected: str) -> None:
    assert render(source, None) == expected


def test_range_over_integer_rejects_two_variables() -> None:
    with pytest.raises(TemplateError, match="can't use 3 to iterate over more than one variable"):
        render("{{range $i, $v := 3}}{{end}}", None)


def test_else_with_chain() -> None:
    source = "{{with .A}}a={{.}}{{else with .B}}b={{.}}{{else}}none{{end}}"
    assert render(source, {"A": "", "B": "2"}) == "b=2"
    assert render(source, {"A": "1", "B": "2"}) == "a=1"
    assert render(source, {}) == "none"


def test_missing_map_key_prints_no_value_but_index_gives_zero_value() -> None:
    data = {"ExtraContext": {"A": "1"}, "Counts": {"a": 1}}
    assert render("{{.ExtraContext.Nope}}", data) == "<no value>"
    assert render("[{{index .ExtraContext `Nope`}}]", data) == "[]"
    assert render("[{{index .Counts `nope`}}]", data) == "[0]"
    assert render("[{{index .ExtraContext `Nope`}}]", {"ExtraContext": {}}) == "[]"


def test_struct_field_of_missing_name_fails_but_map_key_does_not() -> None:
    with pytest.raises(TemplateError, match=r"can't evaluate field Nope in type t\.T"):
        render("{{.Nope}}", GoStruct("t.T", {"A": 1}))
    assert render("{{.A}}", GoStruct("t.T", {"A": 1})) == "1"


def test_unexported_struct_field_is_not_readable() -> None:
    with pytest.raises(TemplateError, match=r"secret is an unexported field of struct type t\.T"):
        render("{{.secret}}", GoStruct("t.T", {"secret": "x"}))


def test_template_name_appears_in_errors() -> None:
    with pytest.raises(TemplateError, match=r'^template: pool:1:2: executing "pool" at <\.X>'):
        render("{{.X}}", GoStruct("t.T", {}), name="pool")


def test_errors_are_provider_errors_on_one_line() -> None:
    with pytest.raises(ProviderError) as raised:
        render("{{range .S}}\n{{end}}", {"S": "line1\nline2"})
    assert "\n" not in str(raised.value)


def test_error_messages_do_not_reveal_string_values() -> None:
    with pytest.raises(TemplateError) as raised:
        render("{{range .CallbackToken}}{{end}}", {"CallbackToken": "s3cr3t-token"})
    assert "s3cr3t" not in str(raised.value)
    assert "range can't iterate over <string>" in str(raised.value)


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


def test_invalid_utf8_from_byte_slicing_is_replaced_in_output() -> None:
    assert render("{{slice .S 0 1}}|{{printf `%q` (slice .S 0 1)}}", {"S": "\u00e9"}) == (
        '\ufffd|"\\xc3"'
    )


def test_tuples_are_slices_and_bytes_index_as_uint8() -> None:
    assert render("{{index .T 1}} {{printf `%T` (index .S 0)}}", {"T": ("a", "b"), "S": "z"}) == (
        "b uint8"
    )

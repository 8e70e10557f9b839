"""Rendering like Go's text/template: output for the same template and data, evaluation rules."""

from __future__ import annotations

import pytest

from garm_provider_lxd.errors import TemplateError
from garm_provider_lxd.gotemplate import GoStruct, render

# The GO_CASES expectations are the output of Go 1.23's text/template for the same template and
# a map[string]interface{} built from DATA. The table holds one template and Go's output per
# line, unwrapped so each case reads as Go printed it: long lines are deliberate here.
# ruff: noqa: E501
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


@pytest.mark.parametrize(("source", "expected"), GO_CASES)
def test_renders_like_go(source: str, expected: str) -> None:
    assert render(source, DATA) == expected


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


def test_invalid_utf8_from_byte_slicing_is_replaced_in_output() -> None:
    assert render("{{slice .S 0 1}}|{{printf `%q` (slice .S 0 1)}}", {"S": "\u00e9"}) == (
        '\ufffd|"\\xc3"'
    )


def test_tuples_are_slices_and_bytes_index_as_uint8() -> None:
    assert render("{{index .T 1}} {{printf `%T` (index .S 0)}}", {"T": ("a", "b"), "S": "z"}) == (
        "b uint8"
    )

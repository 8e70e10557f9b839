"""Template errors like Go 1.23's text/template: the same text, on one line, without values."""

from __future__ import annotations

import pytest

from garm_provider_lxd.errors import ProviderError, TemplateError
from garm_provider_lxd.gotemplate import GoStruct, render

# The GO_ERRORS expectations are the error text of Go 1.23's text/template for the same
# template and the cloudconfig.InstallRunnerParams struct (PARAMS). The table holds one
# template and Go's message per line, unwrapped so each case reads as Go printed it: long lines
# are deliberate here.
# ruff: noqa: E501
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


@pytest.mark.parametrize(("source", "message"), GO_ERRORS)
def test_fails_like_go(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as raised:
        render(source, PARAMS)
    assert str(raised.value) == message


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

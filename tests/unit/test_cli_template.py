"""The Go text/template subset of ``inspect -f`` and ``ps --format``: output and errors as Go
prints them, over a document shaped like ``docker inspect``'s."""

from __future__ import annotations

import pytest

from engine.cli_template import TemplateError, parse

DOC = {
    "Id": "4f1c2e", "Name": "/web", "Args": [],
    "State": {"Status": "exited", "Running": False, "ExitCode": 3, "Pid": 0},
    "Config": {"Cmd": ["sh", "-c", "exit 3"], "Env": ["A=1", "B=2"],
               "Labels": {"b": "2", "a": "1"}},
    "HostConfig": {"Links": None},
}


@pytest.mark.parametrize(("source", "expected"), [
    ("{{.State.ExitCode}}", "3"),
    ("{{.Name}} {{.State.Status}}", "/web exited"),
    ("{{.State.Running}}", "false"),
    ("{{json .State}}", '{"Status":"exited","Running":false,"ExitCode":3,"Pid":0}'),
    ("{{json .Config.Cmd}}", '["sh","-c","exit 3"]'),
    ("{{.Config.Cmd}}", "[sh -c exit 3]"),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.HostConfig.Links}}", "<no value>"),
    ("{{join .Config.Cmd \" \"}}", "sh -c exit 3"),
    ("{{range .Config.Env}}{{.}};{{end}}", "A=1;B=2;"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}", "a=1 b=2 "),
    ("{{range $i, $e := .Config.Cmd}}{{$i}}{{end}}", "012"),
    ("{{range .Args}}x{{else}}none{{end}}", "none"),
    ("{{if eq .State.ExitCode 3}}three{{else}}other{{end}}", "three"),
    ("{{if .State.Running}}up{{else if eq .State.Status \"exited\"}}down{{end}}", "down"),
    ("{{if and .State (eq .State.Pid 0)}}ok{{end}}", "ok"),
    ("{{if ne .State.ExitCode 0}}failed{{end}}", "failed"),
    ("{{if gt .State.ExitCode 2}}big{{end}}", "big"),
    ("{{not .State.Running}} {{and 1 0}} {{or 0 \"\" \"x\"}}", "true 0 x"),
    ("{{with .State}}{{.Status}}{{end}}", "exited"),
    ("{{with $s := .State}}{{$s.Pid}}{{end}}", "0"),
    ("{{with .Args}}x{{else}}empty{{end}}", "empty"),
    ("{{$x := .State.Status}}{{$x}}", "exited"),
    ("{{$.Name}}", "/web"),
    ("{{index .Config.Cmd 0}} {{index .Config.Labels \"a\"}}", "sh 1"),
    ("{{(index .Config.Cmd 2)}}", "exit 3"),
    ("{{len .Config.Env}}", "2"),
    ("{{.State.Status | upper}} {{lower \"ABC\"}} {{title \"hello world\"}}",
     "EXITED abc Hello World"),
    ("{{printf \"%s:%d\" .Name .State.ExitCode}}", "/web:3"),
    ("{{printf \"%5s|%-4d|\" \"ab\" 7}}", "   ab|7   |"),
    ("{{println .Name}}", "/web\n"),
    ("{{split \"a:b\" \":\"}} {{truncate .Id 3}} [{{pad \"x\" 1 2}}]", "[a b] 4f1 [ x  ]"),
    ("a {{- \" b \" -}} c", "a b c"),
    ("a  {{- /* a comment */ -}}  b{{/* another */}}", "ab"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("plain text", "plain text"),
])
def test_output(source: str, expected: str) -> None:
    assert parse(source).execute(DOC) == expected


@pytest.mark.parametrize(("source", "message"), [
    ("{{.Name", "template: :1: unclosed action"),
    ("{{foo .Name}}", 'template: :1: function "foo" not defined'),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{if .Name}}x", "template: :1: unexpected EOF"),
    ("{{}}", "template: :1: missing value for command"),
    ("x\n{{.A | }}", "template: :2: missing value for command"),
])
def test_parse_errors(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as raised:
        parse(source)
    assert str(raised.value) == message


@pytest.mark.parametrize(("source", "message"), [
    ("{{.State.Foo}}", 'template: :1:8: executing "" at <.State.Foo>: map has no entry for '
                       'key "Foo"'),
    ("{{.Nope}}", 'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"'),
    ("{{.Name.Foo}}", 'template: :1:7: executing "" at <.Name.Foo>: can\'t evaluate field '
                      "Foo in type string"),
    ("{{.Name 1}}", 'template: :1:2: executing "" at <.Name>: can\'t give argument to '
                    "non-function .Name"),
    ("{{index .Config.Cmd 9}}", 'template: :1:2: executing "" at <index>: error calling '
                                "index: index out of range: 9"),
    ("{{$y}}", 'template: :1:2: executing "" at <$y>: undefined variable: $y'),
])
def test_execution_errors(source: str, message: str) -> None:
    template = parse(source)
    with pytest.raises(TemplateError) as raised:
        template.execute(DOC)
    assert str(raised.value) == message

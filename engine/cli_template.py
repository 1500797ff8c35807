"""Go text/template, the part ``docker inspect -f`` and ``docker ps --format`` users write.

Executed over the JSON-like documents the CLI prints (dicts, lists, strings, numbers, bools),
as the Docker CLI's raw fallback executes over decoded JSON with ``missingkey=error``:

* text and actions ``{{ }}``, with ``{{-`` / ``-}}`` trimming and ``{{/* comments */}}``;
* pipelines ``a | b`` (the value piped becomes the last argument) and ``( )`` groups;
* operands: ``.``, ``.Field.Chain``, ``$``, ``$x``, ``$x.Field``, strings ("..." and `raw`),
  numbers, ``true``, ``false``, ``nil``;
* ``if`` / ``else if`` / ``else``, ``range`` (lists, and maps in key order, with ``$i, $v :=``),
  ``with``, ``end``, variables ``$x := ...`` and ``$x = ...``;
* Go's functions ``and or not len index print printf println eq ne lt le gt ge`` and Docker's
  ``json join split lower upper title pad truncate``.

Errors read as Go's: ``template: :1: function "x" not defined`` when parsing,
``template: :1:8: executing "" at <.State.Foo>: map has no entry for key "Foo"`` when running.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from typing import Any


class TemplateError(Exception):
    """A template that does not parse, or fails while it runs (the message is Go's)."""


# -- lexing ------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<comma>,)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9]+)?
                      |\.[0-9]+(?:[eE][+-]?[0-9]+)?))
  | (?P<variable>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
""", re.VERBOSE)


@dataclasses.dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    offset: int  # in the whole template


def _tokens(action: str, base: int, line: int) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while position < len(action):
        match = _TOKEN.match(action, position)
        if match is None:
            raise TemplateError(f'template: :{line}: unexpected "{action[position]}" in command')
        kind = match.lastgroup or ""
        if kind != "space":
            found.append(_Token(kind, match.group(), base + position))
        position = match.end()
    return found


# -- the tree ----------------------------------------------------------------------------
@dataclasses.dataclass
class _Operand:
    kind: str  # field, variable, literal, function, pipeline
    value: Any
    offset: int
    text: str


@dataclasses.dataclass
class _Command:
    operands: list[_Operand]


@dataclasses.dataclass
class _Pipeline:
    commands: list[_Command]
    declare: list[str] = dataclasses.field(default_factory=list)
    assign: bool = False  # ``$x = ...`` (an existing variable) rather than ``:=``


@dataclasses.dataclass
class _Text:
    text: str


@dataclasses.dataclass
class _Action:
    pipeline: _Pipeline


@dataclasses.dataclass
class _Branch:
    keyword: str  # if, range, with
    pipeline: _Pipeline
    body: list[Any]
    otherwise: list[Any]


_Node = _Text | _Action | _Branch


class Template:
    """A parsed template; ``execute(data)`` returns its text."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._nodes = _Parser(source).parse()

    def execute(self, data: Any) -> str:
        out: list[str] = []
        _Run(self._source, data).nodes(self._nodes, data, [{"$": data}], out)
        return "".join(out)


class _Parser:
    def __init__(self, source: str) -> None:
        self._source = source
        self._items = self._split(source)
        self._index = 0

    def _line(self, offset: int) -> int:
        return self._source.count("\n", 0, offset) + 1

    def _split(self, source: str) -> list[tuple[str, str, int]]:
        """The template as ("text", text, offset) and ("action", inside, offset) items."""
        items: list[tuple[str, str, int]] = []
        position = 0
        trim_next = False
        while True:
            start = source.find("{{", position)
            text = source[position:] if start < 0 else source[position:start]
            if trim_next:
                text = text.lstrip()
            if start < 0:
                if text:
                    items.append(("text", text, position))
                return items
            inner_start = start + 2
            if source.startswith("- ", inner_start) or source.startswith("-\t", inner_start) \
                    or source.startswith("-\n", inner_start):
                text = text.rstrip()
                inner_start += 1
            if text:
                items.append(("text", text, position))
            if source[inner_start:].lstrip(" ").startswith("/*"):
                comment_end = source.find("*/", inner_start)
                close = source.find("}}", comment_end + 2) if comment_end >= 0 else -1
                if comment_end < 0 or close < 0:
                    raise TemplateError(f"template: :{self._line(start)}: unclosed comment")
                trim_next = source[comment_end + 2:close].strip() == "-"
                position = close + 2
                continue
            close = self._close_of(source, inner_start, start)
            inner = source[inner_start:close]
            trim_next = False
            if inner.endswith(" -") or inner.endswith("\t-") or inner.endswith("\n-"):
                inner = inner[:-1]
                trim_next = True
            items.append(("action", inner, inner_start))
            position = close + 2

    def _close_of(self, source: str, position: int, start: int) -> int:
        """Where the action opened at ``start`` closes (``}}`` outside a string)."""
        quote = ""
        index = position
        while index < len(source):
            char = source[index]
            if quote:
                if char == "\\" and quote != "`":
                    index += 2
                    continue
                if char == quote:
                    quote = ""
                elif char == "\n" and quote != "`":
                    break
            elif char in "\"`'":
                quote = char
            elif source.startswith("}}", index):
                return index
            index += 1
        raise TemplateError(f"template: :{self._line(start)}: unclosed action")

    def parse(self) -> list[_Node]:
        nodes, ending = self._list(top=True)
        if ending is not None:
            word = "{{" + ending[0] + "}}"
            raise TemplateError(f"template: :{self._line(ending[1])}: unexpected {word}")
        return nodes

    def _list(self, top: bool = False) -> tuple[list[_Node], tuple[str, int, list[_Token]] | None]:
        """Nodes up to an ``end`` or ``else`` (returned with its offset and tokens)."""
        nodes: list[_Node] = []
        while self._index < len(self._items):
            kind, text, offset = self._items[self._index]
            self._index += 1
            if kind == "text":
                nodes.append(_Text(text))
                continue
            tokens = _tokens(text, offset, self._line(offset))
            if not tokens:
                raise TemplateError(f"template: :{self._line(offset)}: missing value for command")
            first = tokens[0]
            if first.kind == "ident" and first.text in ("end", "else"):
                return nodes, (first.text, offset, tokens[1:])
            if first.kind == "ident" and first.text in ("if", "range", "with"):
                nodes.append(self._branch(first.text, tokens[1:], offset))
                continue
            if first.kind == "ident" and first.text in ("define", "template", "block", "break",
                                                         "continue"):
                raise TemplateError(
                    f"template: :{self._line(offset)}: {{{{{first.text}}}}} is not supported")
            nodes.append(_Action(self._pipeline(tokens, offset, declarations=True)))
        if not top:
            raise TemplateError(f"template: :{self._line(len(self._source))}: unexpected EOF")
        return nodes, None

    def _branch(self, keyword: str, tokens: list[_Token], offset: int) -> _Branch:
        line = self._line(offset)
        if not tokens:
            raise TemplateError(f"template: :{line}: missing value for {keyword}")
        pipeline = self._pipeline(tokens, offset, declarations=True,
                                  pair=keyword == "range")
        body, ending = self._list()
        otherwise: list[_Node] = []
        assert ending is not None  # _list raises at EOF below the top
        word, else_offset, rest = ending
        if word == "else":
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with") and \
                    keyword == rest[0].text:
                otherwise = [self._branch(rest[0].text, rest[1:], else_offset)]
                return _Branch(keyword, pipeline, body, otherwise)
            if rest:
                raise TemplateError(f"template: :{self._line(else_offset)}: unexpected "
                                    f"\"{rest[0].text}\" in else")
            otherwise, ending = self._list()
            assert ending is not None
            if ending[0] != "end":
                raise TemplateError(f"template: :{self._line(ending[1])}: expected end; "
                                    "found {{else}}")
        return _Branch(keyword, pipeline, body, otherwise)

    def _pipeline(self, tokens: list[_Token], offset: int, *, declarations: bool = False,
                  pair: bool = False) -> _Pipeline:
        line = self._line(offset)
        declare: list[str] = []
        assign = False
        if declarations:
            names = []
            index = 0
            while index < len(tokens) and tokens[index].kind == "variable" and \
                    "." not in tokens[index].text:
                names.append(tokens[index].text)
                index += 1
                if index < len(tokens) and tokens[index].kind == "comma" and pair and \
                        len(names) == 1:
                    index += 1
                    continue
                break
            if names and index < len(tokens) and tokens[index].kind in ("declare", "assign"):
                declare = names
                assign = tokens[index].kind == "assign"
                tokens = tokens[index + 1:]
        commands: list[_Command] = []
        operands: list[_Operand] = []
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token.kind == "pipe":
                if not operands:
                    raise TemplateError(f"template: :{line}: missing value for command")
                commands.append(_Command(operands))
                operands = []
                index += 1
                continue
            if token.kind == "open":
                depth, end = 1, index + 1
                while end < len(tokens) and depth:
                    depth += {"open": 1, "close": -1}.get(tokens[end].kind, 0)
                    end += 1
                if depth:
                    raise TemplateError(f"template: :{line}: unclosed left paren")
                inner = self._pipeline(tokens[index + 1:end - 1], offset)
                group = _Operand("pipeline", inner, token.offset, "(...)")
                if end < len(tokens) and tokens[end].kind == "field" and \
                        tokens[end].offset == tokens[end - 1].offset + 1:  # (x).Field
                    field = tokens[end]
                    group = _Operand("chain", (group, field.text[1:].split(".")),
                                     field.offset, f"(...){field.text}")
                    end += 1
                operands.append(group)
                index = end
                continue
            if token.kind == "close":
                raise TemplateError(f"template: :{line}: unexpected right paren")
            if token.kind in ("declare", "assign", "comma"):
                raise TemplateError(f"template: :{line}: unexpected \"{token.text}\" in command")
            operands.append(self._operand(token, line))
            index += 1
        if not operands:
            raise TemplateError(f"template: :{line}: missing value for command")
        commands.append(_Command(operands))
        for command in commands[1:]:
            if command.operands[0].kind not in ("function", "field", "variable", "pipeline",
                                                "chain"):
                raise TemplateError(f"template: :{line}: non executable command in pipeline "
                                    f"stage {commands.index(command) + 1}")
        return _Pipeline(commands, declare, assign)

    def _operand(self, token: _Token, line: int) -> _Operand:
        # Go places a chain (.A.B, $x.A) at its second part: its errors point there.
        if token.kind == "field":
            names = [] if token.text == "." else token.text[1:].split(".")
            at = token.offset + (len(names[0]) + 1 if len(names) > 1 else 0)
            return _Operand("field", names, at, token.text)
        if token.kind == "variable":
            name, *names = token.text.split(".")
            return _Operand("variable", (name, names), token.offset + (len(name) if names
                                                                        else 0), token.text)
        if token.kind == "string":
            return _Operand("literal", json.loads(token.text), token.offset, token.text)
        if token.kind == "raw":
            return _Operand("literal", token.text[1:-1], token.offset, token.text)
        if token.kind == "char":
            return _Operand("literal", ord(json.loads(f'"{token.text[1:-1]}"')), token.offset,
                            token.text)
        if token.kind == "number":
            text = token.text.replace("_", "")
            value: Any = float(text) if any(c in text for c in ".eE") and not \
                text.lower().startswith(("0x", "-0x", "+0x")) else int(text, 0)
            return _Operand("literal", value, token.offset, token.text)
        name = token.text
        if name in ("true", "false"):
            return _Operand("literal", name == "true", token.offset, name)
        if name == "nil":
            return _Operand("literal", None, token.offset, name)
        if name.split(".")[0] not in FUNCTIONS:
            raise TemplateError(f'template: :{line}: function "{name.split(".")[0]}" '
                                "not defined")
        return _Operand("function", name, token.offset, name)


# -- running -----------------------------------------------------------------------------
_MISSING = object()


class _Run:
    def __init__(self, source: str, root: Any) -> None:
        self._source = source
        self._root = root

    def _where(self, operand: _Operand) -> str:
        line_start = self._source.rfind("\n", 0, operand.offset) + 1
        line = self._source.count("\n", 0, operand.offset) + 1
        return f"template: :{line}:{operand.offset - line_start}: executing \"\" at " \
               f"<{operand.text}>"

    def nodes(self, nodes: Sequence[_Node], dot: Any, scopes: list[dict[str, Any]],
              out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                value = self.pipeline(node.pipeline, dot, scopes)
                if not node.pipeline.declare:
                    out.append(text_of(value))
            else:
                self.branch(node, dot, scopes, out)

    def branch(self, node: _Branch, dot: Any, scopes: list[dict[str, Any]],
               out: list[str]) -> None:
        inner = [*scopes, {}]
        if node.keyword == "range":
            value = self.pipeline(node.pipeline, dot, inner, declare=False)
            if isinstance(value, dict):
                pairs = [(key, value[key]) for key in sorted(value)]
            elif isinstance(value, (list, tuple)):
                pairs = list(enumerate(value))
            elif value is None:
                pairs = []
            elif isinstance(value, int) and not isinstance(value, bool):
                pairs = [(index, index) for index in range(value)]
            else:
                raise TemplateError(f"{self._where(node.pipeline.commands[0].operands[0])}: "
                                    f"range can't iterate over {text_of(value)}")
            if not pairs:
                self.nodes(node.otherwise, dot, inner, out)
                return
            names = node.pipeline.declare
            for key, element in pairs:
                scope = [*scopes, {}]
                if len(names) == 1:
                    scope[-1][names[0]] = element
                elif len(names) == 2:
                    scope[-1][names[0]] = key
                    scope[-1][names[1]] = element
                self.nodes(node.body, element, scope, out)
            return
        value = self.pipeline(node.pipeline, dot, inner)
        if truth(value):
            self.nodes(node.body, value if node.keyword == "with" else dot, inner, out)
        else:
            self.nodes(node.otherwise, dot, [*scopes, {}], out)

    def pipeline(self, pipeline: _Pipeline, dot: Any, scopes: list[dict[str, Any]], *,
                 declare: bool = True) -> Any:
        value: Any = _MISSING
        for command in pipeline.commands:
            value = self.command(command, dot, scopes, value)
        if declare and pipeline.declare:
            name = pipeline.declare[0]
            if pipeline.assign:
                for scope in reversed(scopes):
                    if name in scope:
                        scope[name] = value
                        break
                else:
                    raise TemplateError(f"template: :1: undefined variable: {name}")
            else:
                scopes[-1][name] = value
        return value

    def command(self, command: _Command, dot: Any, scopes: list[dict[str, Any]],
                piped: Any) -> Any:
        first, *rest = command.operands
        if first.kind == "function":
            arguments = [self.operand(operand, dot, scopes) for operand in rest]
            if piped is not _MISSING:
                arguments.append(piped)
            name = str(first.value)
            function = FUNCTIONS[name.split(".")[0]]
            try:
                result = function(*arguments)
            except TemplateError as error:
                raise TemplateError(f"{self._where(first)}: error calling {name}: {error}"
                                    ) from None
            except TypeError:
                raise TemplateError(f"{self._where(first)}: wrong number of args for {name}"
                                    ) from None
            return result
        if rest or piped is not _MISSING:
            raise TemplateError(f"{self._where(first)}: can't give argument to non-function "
                                f"{first.text}")
        return self.operand(first, dot, scopes)

    def operand(self, operand: _Operand, dot: Any, scopes: list[dict[str, Any]]) -> Any:
        if operand.kind == "literal":
            return operand.value
        if operand.kind == "pipeline":
            return self.pipeline(operand.value, dot, scopes)
        if operand.kind == "chain":
            group, names = operand.value
            return self.fields(self.operand(group, dot, scopes), names, operand)
        if operand.kind == "function":
            return self.command(_Command([operand]), dot, scopes, _MISSING)
        if operand.kind == "variable":
            name, names = operand.value
            for scope in reversed(scopes):
                if name in scope:
                    return self.fields(scope[name], names, operand)
            raise TemplateError(f"{self._where(operand)}: undefined variable: {name}")
        return self.fields(dot, operand.value, operand)

    def fields(self, value: Any, names: list[str], operand: _Operand) -> Any:
        for name in names:
            if isinstance(value, dict):
                if name not in value:
                    raise TemplateError(
                        f"{self._where(operand)}: map has no entry for key \"{name}\"")
                value = value[name]
            elif value is None:
                raise TemplateError(f"{self._where(operand)}: nil pointer evaluating "
                                    f"interface {{}}.{name}")
            else:
                raise TemplateError(f"{self._where(operand)}: can't evaluate field {name} "
                                    f"in type {go_type(value)}")
        return value


# -- values ------------------------------------------------------------------------------
def go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    return "interface {}"


def text_of(value: Any) -> str:
    """What an action prints for ``value``, as Go's template (a nil prints ``<no value>``)."""
    if value is _MISSING or value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if not value.is_integer() or abs(value) >= 1e21 else str(int(value))
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(text_of(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{text_of(value[key])}" for key in sorted(value)) + "]"
    return str(value)


def truth(value: Any) -> bool:
    """Go's truth: false, 0, nil and empty values are false."""
    if value is _MISSING or value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def _length(value: Any) -> int:
    if isinstance(value, (str, list, tuple, dict)):
        return len(value)
    raise TemplateError(f"len of type {go_type(value)}")


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key)  # Go: the zero value for a missing key
        elif isinstance(value, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise TemplateError(f"cannot index slice/array with type {go_type(key)}")
            if not 0 <= key < len(value):
                raise TemplateError(f"index out of range: {key}")
            value = value[key] if not isinstance(value, str) else ord(value[key])
        elif value is None:
            raise TemplateError("index of untyped nil")
        else:
            raise TemplateError(f"can't index item of type {go_type(value)}")
    return value


def _compare(name: str, test: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def compare(left: Any, *rights: Any) -> bool:
        if not rights:
            raise TemplateError("missing argument for comparison")
        for right in rights:
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                          for v in (left, right))
            if not numbers and type(left) is not type(right) and None not in (left, right):
                raise TemplateError("incompatible types for comparison")
            if name not in ("eq", "ne") and not numbers and not isinstance(left, str):
                raise TemplateError("invalid type for comparison")
            if name == "eq":
                if left == right:
                    return True
                continue
            return test(left, right)
        return False  # eq: none of them was equal
    return compare


def _formatted(value: Any) -> str:
    """Go's fmt ``%v`` (a nil is ``<nil>`` there)."""
    return "<nil>" if value is None else text_of(value)


def _printf(form: str, *values: Any) -> str:
    """Go's printf for the verbs people use: %s %v %d %q %f %t %x %%."""
    out: list[str] = []
    remaining = list(values)
    pattern = re.compile(r"%([-+ 0#]*)(\d*)(?:\.(\d+))?([svdqftxX%])")
    position = 0
    for match in pattern.finditer(form):
        out.append(form[position:match.start()])
        position = match.end()
        flags, width, precision, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if not remaining:
            out.append(f"%!{verb}(MISSING)")
            continue
        value = remaining.pop(0)
        if verb in "sv":
            text = _formatted(value)
            if precision:
                text = text[:int(precision)]
        elif verb == "q":
            text = json.dumps(_formatted(value), ensure_ascii=False)
        elif verb == "t":
            text = _formatted(value)
        elif verb in "dxX" and isinstance(value, int) and not isinstance(value, bool):
            text = format(value, {"d": "d", "x": "x", "X": "X"}[verb])
        elif verb == "f" and isinstance(value, (int, float)) and not isinstance(value, bool):
            text = f"{float(value):.{int(precision) if precision else 6}f}"
        else:
            text = f"%!{verb}({go_type(value)}={_formatted(value)})"
        if width:
            text = text.ljust(int(width)) if "-" in flags else text.rjust(
                int(width), "0" if "0" in flags and verb in "dfxX" else " ")
        out.append(text)
    out.append(form[position:])
    if remaining:
        out.append("%!(EXTRA " + ", ".join(f"{go_type(v)}={_formatted(v)}" for v in remaining)
                   + ")")
    return "".join(out)


def _print(*values: Any) -> str:
    # Go's Sprint puts a space between operands when neither is a string.
    out = ""
    for index, value in enumerate(values):
        if index and not isinstance(value, str) and not isinstance(values[index - 1], str):
            out += " "
        out += _formatted(value)
    return out


def _json(value: Any) -> str:
    return json.dumps(None if value is _MISSING else value, ensure_ascii=False,
                      separators=(",", ":"))


def _join(values: Any, separator: str) -> str:
    if not isinstance(values, (list, tuple)):
        raise TemplateError(f"wrong type for value; expected []string; got {go_type(values)}")
    return separator.join(text_of(value) for value in values)


def _pad(value: Any, before: int, after: int) -> str:
    return " " * before + text_of(value) + " " * after


def _truncate(value: Any, length: int) -> str:
    text = text_of(value)
    return text[:length] if len(text) > length else text


def _title(value: str) -> str:
    return re.sub(r"(^|\s)(\w)", lambda m: m.group(1) + m.group(2).upper(), value)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "and": lambda first, *rest: next((v for v in (first, *rest) if not truth(v)),
                                     (first, *rest)[-1]),
    "or": lambda first, *rest: next((v for v in (first, *rest) if truth(v)),
                                    (first, *rest)[-1]),
    "not": lambda value: not truth(value),
    "len": _length,
    "index": _index,
    "print": _print,
    "printf": _printf,
    "println": lambda *values: " ".join(_formatted(value) for value in values) + "\n",
    "eq": _compare("eq", lambda a, b: a == b),
    "ne": _compare("ne", lambda a, b: a != b),
    "lt": _compare("lt", lambda a, b: a < b),
    "le": _compare("le", lambda a, b: a <= b),
    "gt": _compare("gt", lambda a, b: a > b),
    "ge": _compare("ge", lambda a, b: a >= b),
    # Docker's own (github.com/docker/cli/templates):
    "json": _json,
    "join": _join,
    "split": lambda value, separator: str(value).split(separator),
    "lower": lambda value: text_of(value).lower(),
    "upper": lambda value: text_of(value).upper(),
    "title": lambda value: _title(text_of(value)),
    "pad": _pad,
    "truncate": _truncate,
}


def parse(source: str) -> Template:
    """Raises TemplateError."""
    return Template(source)

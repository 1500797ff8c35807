"""Go text/template, the part ``docker inspect -f`` and ``docker ps --format`` users write.

Executed over the JSON-like documents the CLI prints (dicts, lists, strings, numbers, bools,
None), as the Docker CLI executes over decoded JSON with ``missingkey=error``:

* text and actions ``{{ }}``, ``{{-`` / ``-}}`` trimming, ``{{/* comments */}}``;
* pipelines ``a | b`` (the value piped becomes the last argument), ``( )`` groups and their
  fields (``(index .Mounts 0).Source``);
* operands: ``.``, ``.Field.Chain``, ``$``, ``$x``, ``$x.Field``, strings ("..." with Go's
  escapes, `raw`), characters ('a'), numbers (0x, 0o, 0b, _), ``true``, ``false``, ``nil``;
* ``if`` / ``else if`` / ``else``, ``range`` (lists, maps in key order, an int; ``$i, $v :=``;
  ``break`` and ``continue`` in its body), ``with`` / ``else with``, ``end``; variables
  ``$x := ...`` (checked when parsing) and ``$x = ...``;
* Go's functions ``and or not len index slice print printf println html js urlquery call eq ne
  lt le gt ge`` (``and`` and ``or`` stop at their answer; nothing in a document is a function
  ``call`` could call) and Docker's ``json join split lower upper title pad truncate``.

Output and errors read as Go 1.19's: ``template: :1: function "x" not defined`` when parsing,
``template: :1:8: executing "" at <.State.Foo>: map has no entry for key "Foo"`` when running.
Not there: ``define``/``template``/``block`` (a ``--format`` is one template).
"""

from __future__ import annotations

import dataclasses
import decimal
import itertools
import json
import math
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

MAX_DEPTH = 200  # nested groups and blocks (Python's stack, not Go's, sets the bound)
MAX_WIDTH = 1_000_000  # fmt's own bound on a width or precision


class TemplateError(Exception):
    """A template that does not parse, or fails while it runs (the message is Go's)."""


# -- lexing ------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<comma>,)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)*')
  | (?P<number>[+-]?(?:0[xXoObB][0-9a-fA-F_]+|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?
                      |\.[0-9][0-9_]*(?:[eE][+-]?[0-9_]+)?))
  | (?P<variable>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "\\": "\\"}


@dataclasses.dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    offset: int  # in the whole template


_KEYWORDS = frozenset({"block", "break", "continue", "define", "else", "end", "if", "nil", "range",
                       "template", "with"})


def _item(token: _Token) -> str:
    """A token as Go's parse errors name it (its lexer's item.String): a keyword or ``.`` in
    angle brackets, anything else quoted, cut to 10 characters if longer. Go lexes ``.A.B``
    and ``$x.A`` as several items: the first is named."""
    text = token.text
    if token.kind == "field" and text != ".":
        text = "." + text[1:].split(".", 1)[0]
    elif token.kind == "variable":
        text = text.split(".", 1)[0]
    if (token.kind == "field" and text == ".") or (token.kind == "ident"
                                                   and text in _KEYWORDS):
        return f"<{text}>"
    if len(text.encode()) > 10:
        return go_quote(text[:10]) + "..."
    return go_quote(text)


def _unquote(body: str, quote: str) -> str:
    """Go's strconv.Unquote of what lies between the quotes. Raises ValueError."""
    out = bytearray()
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out += char.encode()
            index += 1
            continue
        kind = body[index + 1:index + 2]
        if kind in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[kind].encode()
            index += 2
        elif kind == quote:
            out += kind.encode()
            index += 2
        elif kind in ("x", "u", "U"):
            size = {"x": 2, "u": 4, "U": 8}[kind]
            digits = body[index + 2:index + 2 + size]
            if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            value = int(digits, 16)
            if kind == "x":
                out.append(value)
            elif value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                raise ValueError("invalid syntax")
            else:
                out += chr(value).encode()
            index += 2 + size
        elif kind in "01234567" and kind:
            digits = body[index + 1:index + 4]
            if len(digits) != 3 or not all(c in "01234567" for c in digits) or \
                    int(digits, 8) > 255:
                raise ValueError("invalid syntax")
            out.append(int(digits, 8))
            index += 4
        else:
            raise ValueError("invalid syntax")
    return out.decode(errors="replace")


def _tokens(action: str, base: int, line: int) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while position < len(action):
        match = _TOKEN.match(action, position)
        if match is None and action[position] in "+-":  # a sign starts a number
            raise TemplateError(f'template: :{line}: illegal number syntax: '
                                f'"{action[position]}"')
        if match is None or (match.lastgroup == "ident" and action[match.end():match.end() + 1]
                             == "."):
            if match is not None:  # a function's result has no fields without ( )
                raise TemplateError(f"template: :{line}: unexpected . after term "
                                    f'"{match.group()}"')
            raise TemplateError(f'template: :{line}: unexpected "{action[position]}" in '
                                "command")
        kind = match.lastgroup or ""
        following = action[match.end():match.end() + 1]
        if kind == "field" and following == ".":
            raise TemplateError(f'template: :{line}: unexpected . after term "{match.group()}"'
                                if match.group() == "." else
                                f"template: :{line}: unexpected <.> in operand")
        if kind == "number" and re.match(r"[\w.]", following):
            run = re.match(r"[\w.+-]*", action[position:])
            assert run is not None
            raise TemplateError(f'template: :{line}: illegal number syntax: "{run.group()}"')
        if kind != "space":
            found.append(_Token(kind, match.group(), base + position))
        position = match.end()
    return found


# -- the tree ----------------------------------------------------------------------------
@dataclasses.dataclass
class _Operand:
    kind: str  # field, variable, literal, function, group, chain
    value: Any
    offset: int
    text: str


@dataclasses.dataclass
class _Command:
    operands: list[_Operand]

    @property
    def offset(self) -> int:
        return self.operands[0].offset

    @property
    def text(self) -> str:
        return " ".join(operand.text for operand in self.operands)


@dataclasses.dataclass
class _Pipeline:
    commands: list[_Command]
    declare: list[str] = dataclasses.field(default_factory=list)
    assign: bool = False  # ``$x = ...`` (an existing variable) rather than ``:=``
    offset: int = 0

    @property
    def text(self) -> str:
        declared = f"{', '.join(self.declare)} {'=' if self.assign else ':='} " \
            if self.declare else ""
        return declared + " | ".join(command.text for command in self.commands)


@dataclasses.dataclass
class _Text:
    text: str


@dataclasses.dataclass
class _Action:
    pipeline: _Pipeline


@dataclasses.dataclass
class _Jump:
    keyword: str  # break, continue: of the innermost range


@dataclasses.dataclass
class _Branch:
    keyword: str  # if, range, with
    pipeline: _Pipeline
    body: list[Any]
    otherwise: list[Any]


_Node = _Text | _Action | _Branch | _Jump


class Template:
    """A parsed template; ``execute(data)`` returns its text."""

    def __init__(self, source: str) -> None:
        self._source = source
        try:
            self._nodes = _Parser(source).parse()
        except RecursionError:
            raise TemplateError("template: :1: max expression depth exceeded") from None

    def execute(self, data: Any, functions: Mapping[str, Callable[..., Any]] | None = None
                ) -> str:
        """Run over ``data``; ``functions`` replace some of the functions (a table's header
        is rendered with Docker's header functions). Raises TemplateError."""
        out: list[str] = []
        table = {**FUNCTIONS, **(functions or {})}
        try:
            _Run(self._source, table).nodes(self._nodes, data, [{"$": data}], out)
        except RecursionError:
            raise TemplateError("template: :1: max expression depth exceeded") from None
        return "".join(out)


def _trimmed_left(source: str, index: int) -> bool:
    """``{{-`` at ``index`` (the marker needs a space after it)."""
    return source.startswith("-", index) and source[index + 1:index + 2] in (" ", "\t", "\r",
                                                                             "\n")


class _Parser:
    def __init__(self, source: str) -> None:
        self._source = source
        self._items = self._split(source)
        self._index = 0
        self._vars = ["$"]
        self._depth = 0
        self._ranges = 0  # range bodies the parser is in: where break and continue may be

    def _line(self, offset: int) -> int:
        return self._source.count("\n", 0, offset) + 1

    def _fail(self, offset: int, message: str) -> TemplateError:
        return TemplateError(f"template: :{self._line(offset)}: {message}")

    def _split(self, source: str) -> list[tuple[str, str, int]]:
        """The template as ("text", text, offset) and ("action", inside, offset) items."""
        items: list[tuple[str, str, int]] = []
        position = 0
        trim_next = False
        while True:
            start = source.find("{{", position)
            text = source[position:] if start < 0 else source[position:start]
            if trim_next:
                text = text.lstrip(" \t\r\n")
            if start < 0:
                if text:
                    items.append(("text", text, position))
                return items
            inner_start = start + 2
            if _trimmed_left(source, inner_start):
                text = text.rstrip(" \t\r\n")
                inner_start += 2
            if text:
                items.append(("text", text, position))
            if source.startswith("/*", inner_start):
                comment_end = source.find("*/", inner_start + 2)
                if comment_end < 0:
                    raise self._fail(start, "unclosed comment")
                after = comment_end + 2
                if source.startswith("}}", after):
                    trim_next = False
                elif source[after:after + 1] in (" ", "\t", "\r", "\n") and \
                        source.startswith("-}}", after + 1):
                    trim_next = True
                    after += 2
                else:
                    raise self._fail(start, "comment ends before closing delimiter")
                position = after + 2
                continue
            close = self._close_of(source, inner_start, start)
            inner = source[inner_start:close]
            trim_next = False
            if inner.endswith("-") and inner[-2:-1] in (" ", "\t", "\r", "\n"):
                inner = inner[:-1]
                trim_next = True
            items.append(("action", inner, inner_start))
            position = close + 2

    def _close_of(self, source: str, position: int, start: int) -> int:
        """Where the action opened at ``start`` closes (``}}`` outside a quote)."""
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
        if quote:
            raise self._fail(start, {'"': "unterminated quoted string",
                                     "`": "unterminated raw quoted string",
                                     "'": "unterminated character constant"}[quote])
        raise self._fail(start, "unclosed action")

    def parse(self) -> list[_Node]:
        nodes, ending = self._list()
        if ending is not None:
            word, offset, rest = ending
            if word == "end" and rest:
                raise self._fail(offset, f"unexpected {_item(rest[0])} in end")
            raise self._fail(offset, "unexpected {{" + word + "}}")
        return nodes

    def _list(self) -> tuple[list[_Node], tuple[str, int, list[_Token]] | None]:
        """Nodes up to an ``end`` or ``else`` (returned with its offset and tokens), or to
        the end of the template (None)."""
        nodes: list[_Node] = []
        while self._index < len(self._items):
            kind, text, offset = self._items[self._index]
            self._index += 1
            if kind == "text":
                nodes.append(_Text(text))
                continue
            tokens = _tokens(text, offset, self._line(offset))
            if not tokens:
                raise self._fail(offset, "missing value for command")
            first = tokens[0]
            if first.kind == "ident" and first.text in ("end", "else"):
                return nodes, (first.text, offset, tokens[1:])
            if first.kind == "ident" and first.text in ("if", "range", "with"):
                nodes.append(self._branch(first.text, tokens[1:], offset))
                continue
            if first.kind == "ident" and first.text in ("break", "continue"):
                if len(tokens) > 1:
                    raise self._fail(offset, f"unexpected {_item(tokens[1])} in "
                                             f"{{{{{first.text}}}}}")
                if not self._ranges:
                    raise self._fail(offset, f"{{{{{first.text}}}}} outside {{{{range}}}}")
                nodes.append(_Jump(first.text))
                continue
            if first.kind == "ident" and first.text in ("define", "template", "block"):
                raise self._fail(offset, f"{{{{{first.text}}}}} is not supported")
            nodes.append(_Action(self._pipeline(tokens, offset, "command", declarations=True)))
        return nodes, None

    def _branch(self, keyword: str, tokens: list[_Token], offset: int) -> _Branch:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._fail(offset, "max expression depth exceeded")
        mark = len(self._vars)  # what the block declares ends with it
        try:
            if not tokens:
                raise self._fail(offset, f"missing value for {keyword}")
            pipeline = self._pipeline(tokens, offset, keyword, declarations=True,
                                      pair=keyword == "range")
            ranged = keyword == "range"  # Go 1.19: its body only, not its else
            self._ranges += ranged
            try:
                body, ending = self._list()
            finally:
                self._ranges -= ranged
            if ending is None:
                raise self._fail(len(self._source), "unexpected EOF")
            word, else_offset, rest = ending
            otherwise: list[_Node] = []
            if word == "end":
                if rest:
                    raise self._fail(else_offset, f"unexpected {_item(rest[0])} in end")
            elif rest and rest[0].kind == "ident" and rest[0].text in ("if", "with") and \
                    keyword == rest[0].text:
                otherwise = [self._branch(rest[0].text, rest[1:], else_offset)]
            elif rest:
                raise self._fail(else_offset, f"unexpected {_item(rest[0])} in else")
            else:
                otherwise, ending = self._list()
                if ending is None:
                    raise self._fail(len(self._source), "unexpected EOF")
                if ending[0] != "end":
                    raise self._fail(ending[1], "expected end; found {{else}}")
                if ending[2]:
                    raise self._fail(ending[1], f"unexpected {_item(ending[2][0])} in end")
            return _Branch(keyword, pipeline, body, otherwise)
        finally:
            del self._vars[mark:]
            self._depth -= 1

    def _pipeline(self, tokens: list[_Token], offset: int, context: str, *,
                  declarations: bool = False, pair: bool = False) -> _Pipeline:
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
            if names and index < len(tokens) and tokens[index].kind == "comma":
                raise self._fail(offset, f"too many declarations in {context}")
            if names and index < len(tokens) and tokens[index].kind in ("declare", "assign"):
                declare = names
                assign = tokens[index].kind == "assign"
                tokens = tokens[index + 1:]
                if not assign:  # declared before its value is parsed, as Go does
                    self._vars.extend(declare)
        commands: list[_Command] = []
        operands: list[_Operand] = []
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token.kind == "pipe":
                if not operands:
                    raise self._fail(offset, "missing value for command")
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
                    raise self._fail(offset, "unclosed left paren")
                self._depth += 1
                if self._depth > MAX_DEPTH:
                    raise self._fail(offset, "max expression depth exceeded")
                try:
                    inner = self._pipeline(tokens[index + 1:end - 1], offset, "parenthesized "
                                           "pipeline")
                finally:
                    self._depth -= 1
                group = _Operand("group", inner, token.offset, f"({inner.text})")
                if end < len(tokens) and tokens[end].kind == "field" and \
                        tokens[end].offset == tokens[end - 1].offset + 1:  # (x).Field
                    field = tokens[end]
                    group = _Operand("chain", (group, field.text[1:].split(".")),
                                     inner.commands[0].offset, group.text + field.text)
                    end += 1
                operands.append(group)
                index = end
                continue
            if token.kind == "close":
                raise self._fail(offset, f'unexpected ")" in {context}')
            if token.kind in ("declare", "assign", "comma"):
                # After an operand, Go is reading that command's operands.
                raise self._fail(offset, f"unexpected {_item(token)} in "
                                         f"{'operand' if operands else context}")
            operands.append(self._operand(token, offset))
            index += 1
        if not operands:
            raise self._fail(offset, f"missing value for {context}")
        commands.append(_Command(operands))
        for position, command in enumerate(commands):
            first = command.operands[0]
            if first.kind == "literal" and (len(command.operands) > 1 or position > 0):
                raise self._fail(offset, f"can't give argument to non-function {first.text}"
                                 if position == 0 else
                                 f"non executable command in pipeline stage {position + 1}")
        return _Pipeline(commands, declare, assign, offset)

    def _operand(self, token: _Token, offset: int) -> _Operand:
        # Go places a chain (.A.B, $x.A) at its second part: its errors point there.
        if token.kind == "field":
            names = [] if token.text == "." else token.text[1:].split(".")
            at = token.offset + (len(names[0]) + 1 if len(names) > 1 else 0)
            return _Operand("field", names, at, token.text)
        if token.kind == "variable":
            name, *names = token.text.split(".")
            if name not in self._vars:
                raise self._fail(offset, f'undefined variable "{name}"')
            return _Operand("variable", (name, names),
                            token.offset + (len(name) if names else 0), token.text)
        if token.kind in ("string", "raw", "char"):
            body = token.text[1:-1]
            try:
                if token.kind == "raw":
                    value: Any = body.replace("\r", "")
                elif token.kind == "string":
                    value = _unquote(body, '"')
                else:
                    text = _unquote(body, "'")
                    if len(text) != 1:
                        raise ValueError
                    value = ord(text)
            except ValueError:
                raise self._fail(offset, "invalid syntax" if token.kind == "string" else
                                 f"malformed character constant: {token.text}") from None
            return _Operand("literal", value, token.offset, token.text)
        if token.kind == "number":
            return _Operand("literal", self._number(token.text, offset), token.offset,
                            token.text)
        name = token.text
        if name in ("true", "false"):
            return _Operand("literal", name == "true", token.offset, name)
        if name == "nil":
            return _Operand("nil", None, token.offset, name)
        if name not in FUNCTIONS:
            raise self._fail(offset, f'function "{name}" not defined')
        return _Operand("function", name, token.offset, name)

    def _number(self, text: str, offset: int) -> int | float:
        plain = text.replace("_", "")
        hexadecimal = plain.lstrip("+-")[:2].lower() == "0x"
        if not hexadecimal and any(c in plain for c in ".eE"):
            try:
                value = float(plain)
                if math.isinf(value):
                    raise ValueError(text)
                return value
            except ValueError:
                raise self._fail(offset, f'illegal number syntax: "{text}"') from None
        try:
            value = int(plain, 0)
        except ValueError:
            raise self._fail(offset, f'integer overflow: "{text}"') from None
        if not -(1 << 63) <= value < (1 << 64):
            raise self._fail(offset, f'integer overflow: "{text}"')
        return value


# -- running -----------------------------------------------------------------------------
_MISSING = object()  # an action that printed nothing of its own: ``<no value>``


class _Break(Exception):
    """``{{break}}`` ran: the innermost range stops."""


class _Continue(Exception):
    """``{{continue}}`` ran: the innermost range goes on with its next element."""


@dataclasses.dataclass(frozen=True)
class _Signature:
    """A function's parameters, for Go's checks: their kinds ("any", "string", "int",
    "strings"), and whether the last one repeats."""

    kinds: tuple[str, ...]
    variadic: bool = False


class _Run:
    def __init__(self, source: str, functions: Mapping[str, Callable[..., Any]]) -> None:
        self._source = source
        self._functions = functions

    def _at(self, offset: int, text: str) -> str:
        line_start = self._source.rfind("\n", 0, offset) + 1
        line = self._source.count("\n", 0, offset) + 1
        column = len(self._source[line_start:offset].encode())  # Go counts bytes
        return f'template: :{line}:{column}: executing "" at <{text}>'

    def fail(self, operand: _Operand | _Command, message: str) -> TemplateError:
        return TemplateError(f"{self._at(operand.offset, operand.text)}: {message}")

    def nodes(self, nodes: Sequence[_Node], dot: Any, scopes: list[dict[str, Any]],
              out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                value = self.pipeline(node.pipeline, dot, scopes)
                if not node.pipeline.declare:
                    out.append(text_of(value))
            elif isinstance(node, _Jump):
                raise _Break if node.keyword == "break" else _Continue
            else:
                self.branch(node, dot, scopes, out)

    def branch(self, node: _Branch, dot: Any, scopes: list[dict[str, Any]],
               out: list[str]) -> None:
        inner = [*scopes, {}]
        if node.keyword != "range":
            value = self.pipeline(node.pipeline, dot, inner)
            if truth(value):
                self.nodes(node.body, value if node.keyword == "with" else dot, inner, out)
            else:
                self.nodes(node.otherwise, dot, inner, out)
            return
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
            command = node.pipeline.commands[-1]
            raise self.fail(command, f"range can't iterate over {text_of(value)}")
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
            try:
                self.nodes(node.body, element, scope, out)
            except _Continue:
                continue
            except _Break:
                break

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
                    raise self.fail(pipeline.commands[0], f"undefined variable: {name}")
            else:
                scopes[-1][name] = value
        return value

    def command(self, command: _Command, dot: Any, scopes: list[dict[str, Any]],
                piped: Any) -> Any:
        first, *rest = command.operands
        if first.kind == "function":
            return self.call(command, dot, scopes, piped)
        if first.kind == "nil":
            raise self.fail(first, "nil is not a command")
        if rest or piped is not _MISSING:
            method = self.method_of(first, dot, scopes)
            if method is not None:
                return self.invoke(method, command, dot, scopes, piped)
            if first.kind == "field" and first.value:
                raise self.fail(first, f"{first.value[-1]} is not a method but has arguments")
            raise self.fail(first, f"can't give argument to non-function {first.text}")
        return self.operand(first, dot, scopes)

    def method_of(self, operand: _Operand, dot: Any, scopes: list[dict[str, Any]]
                  ) -> Method | None:
        """The context method ``operand`` names (``.Label``, ``$.Label``, ``$row.Label``),
        if it names one: Go looks a method up before a map's key."""
        if operand.kind == "field" and operand.value:
            receiver, name = self.fields(dot, operand.value[:-1], operand), operand.value[-1]
        elif operand.kind == "variable" and operand.value[1]:
            variable, names = operand.value
            scope = next((scope for scope in reversed(scopes) if variable in scope), None)
            if scope is None:
                return None  # the operand's own evaluation says it is undefined
            receiver, name = self.fields(scope[variable], names[:-1], operand), names[-1]
        else:
            return None
        if isinstance(receiver, Method):  # .Label.x "a": Go calls Label first, with none
            raise self.uncalled(operand, receiver)
        return receiver.methods.get(name) if isinstance(receiver, WithMethods) else None

    def uncalled(self, operand: _Operand, method: Method) -> TemplateError:
        """Go's error for a method evaluated without its arguments."""
        return self.fail(operand, f"wrong number of args for {method.name}: want "
                                  f"{method.arity} got 0")

    def invoke(self, method: Method, command: _Command, dot: Any,
               scopes: list[dict[str, Any]], piped: Any) -> Any:
        """A method of the context (``{{.Label "key"}}``): string arguments, as many as it
        takes."""
        first, *rest = command.operands
        given = len(rest) + (piped is not _MISSING)
        if given != method.arity:
            raise self.fail(first, f"wrong number of args for {method.name}: want "
                                   f"{method.arity} got {given}")
        arguments = [self.checked(operand, self.argument(operand, dot, scopes), "string")
                     for operand in rest]
        if piped is not _MISSING:
            arguments.append(self.checked(command, piped, "string", piped=True))
        return method.function(*arguments)

    def call(self, command: _Command, dot: Any, scopes: list[dict[str, Any]],
             piped: Any) -> Any:
        first, *rest = command.operands
        name = str(first.value)
        signature = SIGNATURES[name]
        given = len(rest) + (piped is not _MISSING)
        wanted = len(signature.kinds) - signature.variadic
        if given < wanted or (given > wanted and not signature.variadic):
            what = f"at least {wanted}" if signature.variadic else str(wanted)
            raise self.fail(first, f"wrong number of args for {name}: want {what} got {given}")
        if name in ("and", "or"):  # they stop at their answer (Go 1.18)
            value: Any = _MISSING
            for operand in rest:
                value = self.argument(operand, dot, scopes)
                if truth(value) == (name == "or"):
                    return value
            return piped if piped is not _MISSING else value
        arguments = []
        for position, operand in enumerate(rest):
            kind = signature.kinds[min(position, len(signature.kinds) - 1)]
            arguments.append(self.checked(operand, self.argument(operand, dot, scopes), kind))
        if piped is not _MISSING:
            kind = signature.kinds[min(len(rest), len(signature.kinds) - 1)]
            arguments.append(self.checked(command, piped, kind, piped=True))
        try:
            return self._functions[name](*arguments)
        except TemplateError as error:
            raise self.fail(command, f"error calling {name}: {error}") from None

    def checked(self, operand: _Operand | _Command, value: Any, kind: str, *,
                piped: bool = False) -> Any:
        """``value`` as the parameter's kind wants it, or Go's error."""
        if kind == "any":
            return value
        fits = {"string": lambda v: isinstance(v, str),
                "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
                "strings": lambda v: isinstance(v, (list, tuple)) and all(
                    isinstance(item, str) for item in v)}[kind](value)
        if fits:
            return value
        expected = {"string": "string", "int": "int", "strings": "[]string"}[kind]
        if isinstance(operand, _Operand) and operand.kind == "nil" and not piped:
            raise self.fail(operand, f"cannot assign nil to {expected}")
        if isinstance(operand, _Operand) and operand.kind == "literal" and not piped:
            if kind == "strings":
                raise self.fail(operand, f"can't handle {operand.text} for arg of type "
                                         "[]string")
            found = "integer" if kind == "int" else expected
            raise self.fail(operand, f"expected {found}; found {operand.text}")
        grouped = isinstance(operand, _Operand) and operand.kind == "group"
        if value is None and (piped or grouped):  # a pipeline's nothing, not a field's nil
            if kind == "strings":
                return []
            while isinstance(operand, _Operand) and operand.kind == "group":
                operand = operand.value.commands[-1].operands[-1]
            raise self.fail(operand, f"invalid value; expected {expected}")
        while isinstance(operand, _Operand) and operand.kind == "group":
            # Go points at the last node it evaluated: the group's last operand.
            operand = operand.value.commands[-1].operands[-1]
        raise self.fail(operand, f"wrong type for value; expected {expected}; got "
                                 f"{go_type(value)}")

    def argument(self, operand: _Operand, dot: Any, scopes: list[dict[str, Any]]) -> Any:
        if operand.kind == "function":  # a function as an argument is called bare
            return self.call(_Command([operand]), dot, scopes, _MISSING)
        if operand.kind == "nil":
            return None
        return self.operand(operand, dot, scopes)

    def operand(self, operand: _Operand, dot: Any, scopes: list[dict[str, Any]]) -> Any:
        value = self._operand_value(operand, dot, scopes)
        if isinstance(value, Method):  # a method named without its arguments
            raise self.uncalled(operand, value)
        return value

    def _operand_value(self, operand: _Operand, dot: Any, scopes: list[dict[str, Any]]
                       ) -> Any:
        if operand.kind == "literal":
            return operand.value
        if operand.kind == "group":
            return self.pipeline(operand.value, dot, scopes)
        if operand.kind == "chain":
            group, names = operand.value
            return self.fields(self.pipeline(group.value, dot, scopes), names,
                               dataclasses.replace(operand, text=group.value.text))
        if operand.kind == "variable":
            name, names = operand.value
            for scope in reversed(scopes):
                if name in scope:
                    return self.fields(scope[name], names, operand)
            raise self.fail(operand, f"undefined variable: {name}")
        if operand.kind == "nil":
            return None
        return self.fields(dot, operand.value, operand)

    def fields(self, value: Any, names: list[str], operand: _Operand) -> Any:
        looked_up = False  # a map's value is an interface {} to Go; others have their type
        for name in names:
            if isinstance(value, Method):  # a method as a receiver: Go called it, with none
                raise self.uncalled(operand, value)
            if isinstance(value, WithMethods) and name in value.methods:
                value = value.methods[name]  # Go looks for a method before the map's key
                looked_up = True
            elif isinstance(value, dict):
                if name not in value:
                    raise self.fail(operand, f'map has no entry for key "{name}"')
                value = value[name]
                looked_up = True
            elif value is None:
                raise self.fail(operand, f"nil pointer evaluating interface {{}}.{name}")
            else:
                kind = "interface {}" if looked_up or isinstance(value, (list, tuple)) \
                    else go_type(value)
                raise self.fail(operand, f"can't evaluate field {name} in type {kind}")
        return value


# -- values ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Method:
    """A method of a formatting context, as Docker's ps context has ``Label(name)``."""

    name: str
    function: Callable[..., Any]
    arity: int


class WithMethods(dict[str, Any]):
    """A formatting context: its fields are a Go map's (``{{.Names}}``, ``{{json .}}``), and
    it has ``methods`` too (``{{.Label "key"}}``), which JSON never shows."""

    def __init__(self, fields: Mapping[str, Any], methods: Mapping[str, Method]) -> None:
        super().__init__(fields)
        self.methods = dict(methods)


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
        return "[]string" if value and all(isinstance(v, str) for v in value) \
            else "[]interface {}"
    return "interface {}"


def _shortest(value: float) -> tuple[str, int]:
    """The shortest digits that give back ``value`` (positive, finite, not 0), and the
    decimal exponent of the first one."""
    _, digits, exponent = decimal.Decimal(repr(value)).as_tuple()
    text = "".join(str(d) for d in digits).rstrip("0") or "0"
    assert isinstance(exponent, int)
    return text, len(digits) + exponent - 1


def go_float(value: float, *, json_form: bool = False) -> str:
    """Go's %v of a float64 (exponent from 1e+06 and below 1e-04), or encoding/json's
    (from 1e21 and below 1e-6, ``e-7`` not ``e-07``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest(abs(value))
    if json_form:
        scientific = abs(value) < 1e-6 or abs(value) >= 1e21
    else:  # strconv's shortest %g decides with a precision of 6
        scientific = exponent < -4 or exponent >= 6
    if scientific:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        power = f"{abs(exponent):02d}" if not json_form else str(abs(exponent))
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{power}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    whole = digits[:exponent + 1].ljust(exponent + 1, "0")
    fraction = digits[exponent + 1:]
    return f"{sign}{whole}{'.' + fraction if fraction else ''}"


def _formatted(value: Any) -> str:
    """Go's fmt ``%v`` (a nil is ``<nil>``)."""
    if value is None or value is _MISSING:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_formatted(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{_formatted(value[key])}" for key in sorted(value)) \
            + "]"
    return str(value)


def text_of(value: Any) -> str:
    """What an action prints for ``value``: Go's %v, and ``<no value>`` for a nil."""
    return "<no value>" if value is None or value is _MISSING else _formatted(value)


def truth(value: Any) -> bool:
    """Go's truth: false, 0, nil and empty values are false."""
    if value is _MISSING or value is None:
        return False
    return bool(value)


def _length(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())  # Go counts bytes
    if isinstance(value, (list, tuple, dict)):
        return len(value)
    if value is None:  # a null field: to Go an interface holding nothing
        raise TemplateError("len of nil pointer")
    raise TemplateError(f"len of type {go_type(value)}")


def _index(value: Any, *keys: Any) -> Any:
    if value is None:
        raise TemplateError("index of untyped nil")
    for key in keys:
        if isinstance(value, dict):
            if not isinstance(key, str):
                raise TemplateError(f"value has type {go_type(key)}; should be string")
            value = value.get(key)  # Go: the zero value for a missing key
        elif isinstance(value, (list, tuple, str)):
            if key is None:
                raise TemplateError("cannot index slice/array with nil")
            if not isinstance(key, int) or isinstance(key, bool):
                raise TemplateError(f"cannot index slice/array with type {go_type(key)}")
            sequence = value.encode() if isinstance(value, str) else value
            if key == len(sequence):  # Go's bound check lets it through; reflect panics
                raise TemplateError("reflect: " + ("string" if isinstance(value, str)
                                                   else "slice") + " index out of range")
            if not 0 <= key < len(sequence):
                raise TemplateError(f"index out of range: {key}")
            value = sequence[key]
        elif value is None:  # what an earlier key found: nothing
            raise TemplateError("index of nil pointer")
        else:
            raise TemplateError(f"can't index item of type {go_type(value)}")
    return value


_KINDS = {"bool": "bool", "int": "int", "float64": "float", "string": "string"}


def _kind(value: Any) -> str:
    """Go's basic kind of ``value`` for comparisons: nil, bool, int, float, string, other."""
    return "nil" if value is None else _KINDS.get(go_type(value), "other")


def _eq(left: Any, *rights: Any) -> bool:
    """Go 1.19's eq, step by step: basic kinds compare by value; a map or a list compares
    only with nil; two values of different kinds, neither nil, are an error."""
    if not rights:
        raise TemplateError("missing argument for comparison")
    basic = _kind(left) not in ("nil", "other")
    for right in rights:
        if _kind(left) != _kind(right) and (basic or _kind(right) not in ("nil", "other")):
            if left is not None and right is not None:
                raise TemplateError("incompatible types for comparison")
            continue  # nil equals nothing else
        if basic:
            if left == right:
                return True
            continue
        if left is not None and right is not None:  # maps and lists
            if isinstance(left, dict) != isinstance(right, dict):
                raise TemplateError(
                    f"non-comparable types {_verb('s', '', None, None, left)}: "
                    f"{go_type(left)}, {go_type(right)}: {_formatted(right)}")
            raise TemplateError(f"non-comparable type {_verb('s', '', None, None, right)}: "
                                f"{go_type(right)}")
        if left is None and right is None:
            return True
    return False


def _ordered(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        kinds = (_kind(left), _kind(right))
        if "other" in kinds or "nil" in kinds or "bool" in kinds:
            raise TemplateError("invalid type for comparison")
        if kinds[0] != kinds[1]:
            raise TemplateError("incompatible types for comparison")
        return test(left, right)
    return compare


_VERB = re.compile(r"%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d*))?(.?)", re.DOTALL)


def go_quote(text: str) -> str:
    """Go's strconv.Quote."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t", "\v": "\\v"}[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out) + '"'


def _bad(verb: str, value: Any, flags: str = "", width: int | None = None,
         precision: int | None = None) -> str:
    """fmt's ``%!verb(type=value)``: the value printed as %v with the verb's flags."""
    if value is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(value)}={_verb('v', flags, width, precision, value)})"


def _element(verb: str, flags: str, width: int | None, precision: int | None, value: Any
             ) -> str:
    """An element of a list or a map: a nil one is ``<nil>`` whatever the verb, as is."""
    return "<nil>" if value is None else _verb(verb, flags, width, precision, value)


def _verb(verb: str, flags: str, width: int | None, precision: int | None, value: Any) -> str:
    """One of Go's fmt verbs applied to ``value`` (elementwise on a list, as Go's)."""
    if isinstance(value, (list, tuple)) and verb != "T":
        return "[" + " ".join(_element(verb, flags, width, precision, v) for v in value) + "]"
    if isinstance(value, dict) and verb != "T":
        return "map[" + " ".join(f"{_verb(verb, flags, width, precision, key)}:"
                                 f"{_element(verb, flags, width, precision, value[key])}"
                                 for key in sorted(value)) + "]"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    text: str
    if verb == "T":
        text = go_type(value) if value is not None else "<nil>"
    elif verb == "v":
        text = _formatted(value)
        if isinstance(value, str) and precision is not None:
            text = value[:precision]
    elif verb == "s":
        if not isinstance(value, str):
            return _bad(verb, value, flags, width, precision)
        text = value
        if precision is not None:
            text = value[:precision]
    elif verb == "q":
        if isinstance(value, str):
            text = go_quote(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            valid = 0 <= value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF
            quoted = go_quote(chr(value) if valid else "\ufffd")  # Go: RuneError
            text = "'" + quoted[1:-1].replace("\\\"", '"').replace("'", "\\'") + "'"
        else:
            return _bad(verb, value, flags, width, precision)
    elif verb == "t":
        if not isinstance(value, bool):
            return _bad(verb, value, flags, width, precision)
        text = "true" if value else "false"
    elif verb in "dboxXcU" and isinstance(value, int) and not isinstance(value, bool):
        if verb == "c":  # Go writes U+FFFD for what is no character
            valid = 0 <= value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF
            text = chr(value) if valid else "\ufffd"
        elif verb == "U":
            text = f"U+{value:04X}"
        elif verb == "b":
            text = ("-" if value < 0 else "+" if "+" in flags else "") + format(abs(value), "b")
        elif verb == "o" and "#" in flags:
            text = ("-" if value < 0 else "") + "0" + format(abs(value), "o")
        else:
            form = "%" + flags.replace("0", "").replace("-", "") + \
                ("" if precision is None else f".{precision}") + verb
            text = form % value
    elif verb in "xX" and isinstance(value, str):
        text = value.encode().hex()
        text = text.upper() if verb == "X" else text
    elif verb in "eEfFgG" and isinstance(value, float):
        if verb in "gG" and precision is None:
            text = go_float(float(value))
            text = text.upper() if verb == "G" else text
            if "+" in flags and not text.startswith("-"):
                text = "+" + text
        else:
            form = "%" + flags.replace("0", "").replace("-", "") + \
                ("" if precision is None else f".{precision}") + verb
            text = form % float(value)
    else:
        return _bad(verb, value, flags, width, precision)
    if width is not None and len(text) < width:
        if "-" in flags:
            text = text.ljust(width)
        elif "0" in flags and (number or isinstance(value, str)):
            sign = text[0] if text[:1] in "+- " else ""
            text = sign + text[len(sign):].rjust(width - len(sign), "0")
        else:
            text = text.rjust(width)
    return text


def _size(text: str | None, remaining: list[Any]) -> int | None:
    """A width or precision: digits, or ``*`` (taken from the arguments: None unless it is
    an int within a million, fmt's tooLarge), or none."""
    if text is None:
        return None
    if text != "*":
        return int(text) if int(text) <= MAX_WIDTH else None
    size = remaining.pop(0) if remaining else None
    if isinstance(size, int) and not isinstance(size, bool) and abs(size) <= MAX_WIDTH:
        return size
    return None


def _printf(form: str, *values: Any) -> str:
    """Go's fmt.Sprintf for the verbs people use."""
    out: list[str] = []
    remaining = list(values)
    position = 0
    while True:
        percent = form.find("%", position)
        if percent < 0:
            out.append(form[position:])
            break
        out.append(form[position:percent])
        match = _VERB.match(form, percent)
        assert match is not None  # every part of the pattern is optional
        flags, width_text, precision_text, verb = match.groups()
        position = match.end()
        if verb == "%":
            out.append("%")
            continue
        if not verb:
            out.append("%!(NOVERB)")
            break
        # fmt's intFromArg: a * takes the next argument, an int within a million, else the
        # verb goes on without it after a %!(BADWIDTH) or %!(BADPREC).
        width = _size(width_text, remaining)
        if width is None and width_text is not None:
            out.append("%!(BADWIDTH)")
        precision = 0 if precision_text == "" else _size(precision_text, remaining)
        if precision is not None and precision < 0:
            precision = None
        if precision is None and precision_text:
            out.append("%!(BADPREC)")
        if width is not None and width < 0:
            flags, width = flags + "-", -width
        if not remaining:
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_verb(verb, flags, width, precision, remaining.pop(0)))
    if remaining:
        out.append("%!(EXTRA " + ", ".join(
            "<nil>" if v is None else f"{go_type(v)}={_formatted(v)}" for v in remaining) + ")")
    return "".join(out)


def _print(*values: Any) -> str:
    # Go's Sprint puts a space between operands when neither is a string.
    out = ""
    for index, value in enumerate(values):
        if index and not isinstance(value, str) and not isinstance(values[index - 1], str):
            out += " "
        out += _formatted(value)
    return out


class NilSlice(list):  # type: ignore[type-arg]
    """A nil slice of Docker's structs (``HostConfig.Binds`` with none): empty, so a
    template prints it ``[]`` as Go does, and JSON ``null`` as Go writes it."""


class NilMap(dict):  # type: ignore[type-arg]
    """A nil map (a volume's ``Labels`` with none): ``map[]`` in a template, JSON ``null``."""


def json_plain(value: Any) -> Any:
    """``value`` for the json module: each typed nil as None."""
    if isinstance(value, (NilSlice, NilMap)):
        return None
    if isinstance(value, dict):
        return {key: json_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_plain(item) for item in value]
    return value


def json_text(value: Any) -> str:
    """encoding/json's text of ``value``, with SetEscapeHTML(false), keys in their order:
    what Docker's ``json`` template function writes."""
    if value is None or value is _MISSING or isinstance(value, (NilSlice, NilMap)):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise TemplateError(f"json: unsupported value: {go_float(value)}")
        return go_float(value, json_form=True)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\u2028", "\\u2028").replace(
            "\u2029", "\\u2029")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json_text(str(key))}:{json_text(item)}"
                              for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json_text(item) for item in value) + "]"
    return json_text(str(value))


def _slice(value: Any, *indexes: Any) -> Any:
    """Go's ``slice``: ``slice x 1 2`` is ``x[1:2]`` (a string's bytes), ``slice x 1 2 3`` is
    ``x[1:2:3]`` (not of a string)."""
    if value is None:
        raise TemplateError("slice of untyped nil")
    if len(indexes) > 3:
        raise TemplateError(f"too many slice indexes: {len(indexes)}")
    if isinstance(value, str):
        if len(indexes) == 3:
            raise TemplateError("cannot 3-index slice a string")
        sequence: Any = value.encode()
    elif isinstance(value, (list, tuple)):
        sequence = value
    else:
        raise TemplateError(f"can't slice item of type {go_type(value)}")
    bounds = [0, len(sequence)]
    for position, index in enumerate(indexes):
        if index is None:
            raise TemplateError("cannot index slice/array with nil")
        if not isinstance(index, int) or isinstance(index, bool):
            raise TemplateError(f"cannot index slice/array with type {go_type(index)}")
        if not 0 <= index <= len(sequence):
            raise TemplateError(f"index out of range: {index}")
        if position < len(bounds):
            bounds[position] = index
        else:
            bounds.append(index)
    for low, high in itertools.pairwise(bounds):
        if low > high:
            raise TemplateError(f"invalid slice index: {low} > {high}")
    part = sequence[bounds[0]:bounds[1]]
    return part.decode(errors="replace") if isinstance(value, str) else part


def _printed(values: tuple[Any, ...]) -> str:
    """The text the escaping functions work on: a lone string as it is, else Go's Sprint of
    the arguments, a nil one printed ``<no value>``."""
    if len(values) == 1 and isinstance(values[0], str):
        return values[0]
    return _print(*("<no value>" if value is None else value for value in values))


_HTML = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;", "\0": "\ufffd"}
_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
       "=": "\\u003D"}


def _html(*values: Any) -> str:
    return "".join(_HTML.get(char, char) for char in _printed(values))


def _js_char(char: str) -> str:
    if char in _JS:
        return _JS[char]
    if char < " ":
        return f"\\u{ord(char):04X}"
    if char < "\x80" or unicodedata.category(char)[0] in "LMNPS":  # Go's unicode.IsPrint
        return char
    return f"\\u{ord(char):04X}"


def _js(*values: Any) -> str:
    return "".join(_js_char(char) for char in _printed(values))


def _urlquery(*values: Any) -> str:
    return urllib.parse.quote_plus(_printed(values), safe="")


def _call(function: Any, *_arguments: Any) -> Any:
    if function is None:
        raise TemplateError("call of nil")
    raise TemplateError(f"non-function of type {go_type(function)}")  # documents hold none


def _pad(value: str, before: int, after: int) -> str:
    if not value:
        return value  # Docker's: nothing to pad
    if before < 0 or after < 0:
        raise TemplateError("strings: negative Repeat count")
    if before > MAX_WIDTH or after > MAX_WIDTH:
        raise TemplateError("padding too large")
    return " " * max(before, 0) + value + " " * max(after, 0)


def _truncate(value: str, length: int) -> str:
    raw = value.encode()  # Go slices bytes
    if len(raw) < length:
        return value
    if length < 0:
        raise TemplateError(f"runtime error: slice bounds out of range [:{length}]")
    return raw[:length].decode(errors="replace")


def _title(value: str) -> str:
    """Go's strings.Title: a letter after anything but a letter, digit or ``_``."""
    out = []
    previous = " "
    for char in value:
        out.append(char.upper() if not (previous.isalnum() or previous == "_") else char)
        previous = char
    return "".join(out)


def _split(value: str, separator: str) -> list[str]:
    return list(value) if separator == "" else value.split(separator)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "and": lambda *values: values[-1],  # evaluated in _Run.call, which stops early
    "or": lambda *values: values[-1],
    "not": lambda value: not truth(value),
    "len": _length,
    "index": _index,
    "slice": _slice,
    "html": _html,
    "js": _js,
    "urlquery": _urlquery,
    "call": _call,
    "print": _print,
    "printf": _printf,
    "println": lambda *values: " ".join(_formatted(value) for value in values) + "\n",
    "eq": _eq,
    "ne": lambda left, right: not _eq(left, right),
    "lt": _ordered(lambda a, b: a < b),
    "le": _ordered(lambda a, b: a <= b),
    "gt": _ordered(lambda a, b: a > b),
    "ge": _ordered(lambda a, b: a >= b),
    # Docker's own (github.com/docker/cli/templates):
    "json": json_text,
    "join": lambda values, separator: separator.join(values),
    "split": _split,
    "lower": str.lower,
    "upper": str.upper,
    "title": _title,
    "pad": _pad,
    "truncate": _truncate,
}
SIGNATURES: dict[str, _Signature] = {
    "and": _Signature(("any", "any"), variadic=True),
    "or": _Signature(("any", "any"), variadic=True),
    "not": _Signature(("any",)),
    "len": _Signature(("any",)),
    "index": _Signature(("any", "any"), variadic=True),
    "slice": _Signature(("any", "any"), variadic=True),
    "html": _Signature(("any",), variadic=True),
    "js": _Signature(("any",), variadic=True),
    "urlquery": _Signature(("any",), variadic=True),
    "call": _Signature(("any", "any"), variadic=True),
    "print": _Signature(("any",), variadic=True),
    "printf": _Signature(("string", "any"), variadic=True),
    "println": _Signature(("any",), variadic=True),
    "eq": _Signature(("any", "any"), variadic=True),
    "ne": _Signature(("any", "any")),
    "lt": _Signature(("any", "any")),
    "le": _Signature(("any", "any")),
    "gt": _Signature(("any", "any")),
    "ge": _Signature(("any", "any")),
    "json": _Signature(("any",)),
    "join": _Signature(("strings", "string")),
    "split": _Signature(("string", "string")),
    "lower": _Signature(("string",)),
    "upper": _Signature(("string",)),
    "title": _Signature(("string",)),
    "pad": _Signature(("string", "int", "int")),
    "truncate": _Signature(("string", "int")),
}
# Docker renders a table's header with these in place of its own: a header cell is the
# field's name, whatever the cell does to its value.
HEADER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: (lambda value, *_: value)
    for name in ("json", "split", "join", "title", "lower", "upper", "truncate")
}


def parse(source: str) -> Template:
    """Raises TemplateError."""
    return Template(source)

"""Render a Jinja template to the exact bytes of a callback, in a sandbox that fails loudly."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from json.encoder import encode_basestring, encode_basestring_ascii
from operator import attrgetter
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from simulator.errors import WasimError, did_you_mean
from simulator.models import Business, Button, Tap, TemplateMessage, User
from simulator.overrides import Override, apply_overrides
from simulator.resources import builtin_dir
from simulator.sandbox import (
    BoundedEnvironment,
    ConfinedLoader,
    RenderLimit,
    check_text,
    count_output,
    fake_facade,
    render_bounded,
)
from simulator.taps import TapFactory, TapOptions
from simulator.wire import php_del, to_wire

TEMPLATE_SUFFIX = ".json.j2"
DEFAULT_TEMPLATE = "button_tap"
CONTEXT_HINT = "Templates see `tap` (business, user, template, button, message_id, " \
               "timestamp, trace_id, media_url) and `fake` (seeded data calls such as " \
               "fake.name() or fake.numerify('###'); the README lists them)."


_value_encoder = json.JSONEncoder(ensure_ascii=False)


# What a template may raise while rendering; all of it is the template author's to fix.
# RecursionError and MemoryError too: a template can recurse (macros) or build big values.
_TEMPLATE_FAILURES = (jinja2.TemplateError, TypeError, ValueError, LookupError,
                      AttributeError, ArithmeticError, RecursionError, MemoryError)


def _json_filter(value: Any) -> str:
    # Jinja's own `tojson` HTML-escapes `<>&'`, which would change the payload; the final
    # wire serialization does the escaping Meta does, so here only JSON quoting is needed.
    if type(value) is str:
        text = encode_basestring(value)  # the C fast path; most values are strings
    else:
        if isinstance(value, jinja2.Undefined):
            str(value)  # StrictUndefined raises UndefinedError, naming the variable, on any use
        check_text(value, "the value given to the json filter")
        text = _value_encoder.encode(value)
    count_output(len(text))  # it is printed unwrapped (see counted_filters below)
    return text


# The records a template reads are frozen dataclasses of plain values, safe by construction:
# reading their fields skips the sandbox's per-attribute checks, which otherwise cost more
# than the rest of rendering put together (see benchmarks/render.py).
_MODEL_FIELDS: dict[type, frozenset[str]] = {
    cls: frozenset(f.name for f in fields(cls))
    for cls in (Business, User, Button, TemplateMessage, Tap)
}


class _Environment(BoundedEnvironment):
    """The bounded sandbox, with a fast path for reading the fields of wasim's own records."""

    counted_filters = frozenset({"json"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        allowed = _MODEL_FIELDS.get(type(obj))
        if allowed is not None and attribute in allowed:
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)


def make_environment(folder: Path | None, entry: str | None = None) -> SandboxedEnvironment:
    """The sandboxed, bounded, strict Jinja environment every template and scenario renders in.

    Includes, imports and extends read only files inside `folder` (after resolving links);
    without a folder (a scenario file) they are refused. `entry` is the file the person named.
    """
    env = _Environment(
        loader=ConfinedLoader(folder, entry),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Unguarded: it is linear in its value, and it is the hot path of every callback.
    env.filters["json"] = _json_filter
    return env


def builtin_templates() -> list[str]:
    """Names of the templates that ship with wasim."""
    folder = builtin_dir("templates")
    return sorted(p.name[: -len(TEMPLATE_SUFFIX)] for p in folder.glob(f"*{TEMPLATE_SUFFIX}"))


def find_template(name_or_path: str) -> Path:
    """Resolve a built-in template name, or a path to a template file."""
    candidate = Path(name_or_path)
    if candidate.suffix or "/" in name_or_path or candidate.is_file():
        if not candidate.is_file():
            raise WasimError(f"no template file at {name_or_path}", field="template",
                             hint="Check the path, or give a built-in name: "
                                  f"{', '.join(builtin_templates())}.")
        return candidate
    builtin = builtin_dir("templates") / f"{name_or_path}{TEMPLATE_SUFFIX}"
    if not builtin.is_file():
        names = builtin_templates()
        raise WasimError(f"no built-in template named {name_or_path!r}", field="template",
                         hint=did_you_mean(name_or_path, names)
                         or f"Built-in templates: {', '.join(names)}; or give a file path.")
    return builtin


MAX_OUTPUT_DEPTH = 100  # Meta's callbacks nest about 8 levels; a bomb nests 50,000
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _short_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > 300:
        raise ValueError(f"a number of {digits:,} digits is too long for a callback")
    return int(text)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large for a JSON number")
    return value


def _check_plain(document: Any) -> None:
    """Refuse nesting past MAX_OUTPUT_DEPTH and lone surrogates (not text), without recursion."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_OUTPUT_DEPTH:
            raise ValueError(f"it nests more than {MAX_OUTPUT_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
            stack.extend((key, depth) for key in value)
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and (found := _SURROGATE.search(value)):
            raise ValueError(f"a lone surrogate {found.group()!a} is not text")


def parse_output(text: str) -> Any:
    """A rendered template's JSON: plain values only (no NaN or infinity, every number
    readable, at most MAX_OUTPUT_DEPTH levels), else ValueError saying why."""
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite,
                              parse_int=_short_int)
    except RecursionError:
        raise ValueError(f"it nests more than {MAX_OUTPUT_DEPTH} levels deep") from None
    _check_plain(document)
    return document


def error_line(exc: BaseException, filename: str) -> int | None:
    """The line of `filename` where `exc` was raised, from Jinja's rewritten traceback."""
    line = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class CallbackTemplate:
    """A loaded template that turns taps into callback documents and wire bytes."""

    def __init__(self, path: Path, fake: Any = None) -> None:
        self.path = path
        self.display = _display_path(path)
        try:
            self._template, conditions, splices = _compiled(path)
        except jinja2.TemplateSyntaxError as exc:
            raise WasimError(f"template syntax error: {exc.message}",
                             where=f"{self.display}:{exc.lineno}",
                             hint="Fix the Jinja syntax on that line.") from None
        except OSError as exc:
            raise WasimError(f"cannot read the template ({exc.strerror})",
                             where=self.display) from None
        except (RecursionError, MemoryError):
            raise WasimError("the template is nested too deeply to compile",
                             where=self.display,
                             hint="Split deep expressions into {% set %} steps.") from None
        except jinja2.TemplateError as exc:  # the confined loader: not UTF-8, unreadable
            raise WasimError(str(exc.message or exc), where=self.display) from None
        self._filename = self._template.filename or str(path)
        self._globals = dict(self._template.globals)
        self._faker = fake  # its facade is made on first render: a plain template never needs it
        self._fake_made: Any = None
        self._plain = conditions is not None
        self._conditions = conditions or ()
        self._shape = [attrgetter(c) for c in self._conditions]
        # One compiled splice per shape (which `{% if %}` fields are set); None: use Jinja.
        # Shared by every CallbackTemplate of the same source: a plain template reads nothing
        # but the tap, so a splice made by one serves all.
        self._splices = splices

    def wire(self, tap: Tap) -> bytes:
        """The exact wire bytes for `tap`."""
        if self._plain:
            shape = tuple(bool(read(tap)) for read in self._shape)
            try:
                splice = self._splices[shape]
            except KeyError:
                splice = self._splices[shape] = _compile_splice(self, tap, self._conditions)
            if splice is not None:
                return splice(tap)
        return to_wire(self.document(tap))

    @property
    def _fake(self) -> Any:
        """The `fake` templates see, made once, on first use."""
        if self._fake_made is None and self._faker is not None:
            # Never the Faker itself: its name lookups (get_formatter, format) escape the
            # sandbox.
            self._fake_made = fake_facade(self._faker)
        return self._fake_made

    def document(self, tap: Tap) -> dict[str, Any]:
        """Render `tap` and parse the result: the callback as a JSON object."""
        template = self._template
        # Template.render() copies every global into a new context per call; a shared context
        # over one prepared dict does the same job at a fraction of the cost per callback.
        context = template.new_context({**self._globals, "tap": tap, "fake": self._fake},
                                       shared=True)
        try:
            try:
                text = render_bounded(lambda: template.root_render_func(context))
            except _TEMPLATE_FAILURES:
                template.environment.handle_exception()  # re-raises with template line numbers
        except jinja2.UndefinedError as exc:
            raise self._render_error(exc, f"undefined variable: {exc.message}",
                                     CONTEXT_HINT) from None
        except RenderLimit as exc:
            raise self._render_error(exc, f"the template went past a rendering limit: {exc}",
                                     "Render less: docs/guides/safety-bounds.md lists "
                                     "the limits.") from None
        except RecursionError as exc:
            raise self._render_error(exc, "the template recursed too deeply",
                                     "Look for a macro that calls itself.") from None
        except MemoryError as exc:
            raise self._render_error(exc, "the template ran out of memory", None) from None
        except SecurityError as exc:
            raise self._render_error(exc, f"not allowed in a template: {exc}", None) from None
        except _TEMPLATE_FAILURES as exc:
            raise self._render_error(exc, f"the template failed: {exc}", None) from None
        try:
            document = parse_output(text)
        except json.JSONDecodeError as exc:
            raise WasimError(
                f"the template renders invalid JSON: {exc.msg} (line {exc.lineno}, column "
                f"{exc.colno} of the output)",
                where=f"{self.display}:{exc.lineno}",
                hint="Insert values with the `json` filter, e.g. {{ tap.user.name | json }}.",
            ) from None
        except ValueError as exc:  # NaN, a number too long to read, nesting, a surrogate
            raise WasimError(f"the template renders JSON a callback cannot carry: {exc}",
                             where=self.display, hint="Render plain JSON values.") from None
        if not isinstance(document, dict):
            raise WasimError(f"the template renders a JSON {type(document).__name__}, "
                             "expected an object", where=self.display)
        return document

    def _render_error(self, exc: BaseException, what: str, hint: str | None) -> WasimError:
        line = error_line(exc, self._filename)
        where = f"{self.display}:{line}" if line else self.display
        return WasimError(what, where=where, hint=hint)


Splices = dict[tuple[bool, ...], Callable[[Tap], bytes] | None]


def _compiled(path: Path) -> tuple[jinja2.Template, tuple[str, ...] | None, Splices]:
    """The template at `path` compiled, and its plain conditions (see _plain_conditions).

    Lexing, parsing and compiling are most of what a Simulator costs a test, and every test
    loads the same few templates: the result is kept per source text (an edited file is
    compiled again). A file that cannot be read goes the uncached way, which reports why.
    """
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return _compile.__wrapped__(str(path.parent), path.name, "")
    return _compile(str(path.parent), path.name, source)


@functools.lru_cache(maxsize=32)
def _compile(directory: str, name: str,
             source: str) -> tuple[jinja2.Template, tuple[str, ...] | None, Splices]:
    """Compile `name` in `directory` (`source` is the cache key: the text it was read as).
    Rendering shares nothing mutable between callers: each render has its own context and
    budget (sandbox.render_bounded), so one compiled template serves every Simulator."""
    env = make_environment(Path(directory), name)
    template = env.get_template(name)
    return template, _plain_conditions(env, Path(directory) / name), {}


# --- the compiled fast path ------------------------------------------------------------------
#
# A template that only prints fields of the tap through `json` (no Faker, no logic beyond
# `{% if tap.<field> %}` / `{% if not tap.<field> %}`), like the built-in ones, is the same
# string for every tap of one shape (which of those fields are set) with the values spliced
# in. It is rendered once per shape with a marker in every field, serialized the usual way,
# and cut at the markers; each callback is then the pieces joined with its values escaped
# exactly as to_wire() escapes strings. Twice as fast as rendering, byte for byte the same
# (checked on the first real tap of each shape before it is trusted); any other template
# renders through Jinja.

_MARKER = re.compile(r"@@wasim:(\d+)@@")


def _plain_conditions(env: SandboxedEnvironment, path: Path) -> tuple[str, ...] | None:
    """The fields a plain template's `{% if %}`s test, or None if the template is not plain.

    Plain: literal text, `{{ tap.<field> | json }}`, and `{% if [not] tap.<field> %}` blocks
    (with an optional `{% else %}`) of the same.
    """
    try:
        tree = env.parse(path.read_text(encoding="utf-8"))
    except (jinja2.TemplateSyntaxError, OSError, UnicodeDecodeError):
        return None
    conditions: list[str] = []
    return tuple(dict.fromkeys(conditions)) if _plain(tree.body, conditions) else None


def _plain(statements: list[nodes.Node], conditions: list[str]) -> bool:
    for statement in statements:
        if isinstance(statement, nodes.If):
            test = statement.test.node if isinstance(statement.test, nodes.Not) \
                else statement.test
            tested = _field_path(test)
            if tested is None or statement.elif_:
                return False
            conditions.append(tested)
            if not (_plain(statement.body, conditions) and _plain(statement.else_, conditions)):
                return False
            continue
        if not isinstance(statement, nodes.Output):
            return False
        for node in statement.nodes:
            if isinstance(node, nodes.TemplateData):
                continue
            if not (isinstance(node, nodes.Filter) and node.name == "json" and not node.args
                    and not node.kwargs and _field_path(node.node) is not None):
                return False
    return True


def _field_path(node: nodes.Node | None) -> str | None:
    names: list[str] = []
    while isinstance(node, nodes.Getattr):
        names.append(node.attr)
        node = node.node
    if isinstance(node, nodes.Name) and node.name == "tap" and names:
        return ".".join(reversed(names))
    return None


def _with_markers(value: Any, getters: list[str], prefix: str = "",
                  keep: frozenset[str] = frozenset()) -> Any:
    """A copy of a record with every text field replaced by a numbered marker.

    Fields in `keep` (tested by an `{% if %}` and empty here) stay as they are, so the
    marked copy takes the same branches as the record.
    """
    changes = {}
    for item in fields(value):
        current = getattr(value, item.name)
        path = f"{prefix}{item.name}"
        if type(current) in _MODEL_FIELDS:
            changes[item.name] = _with_markers(current, getters, path + ".", keep)
        elif isinstance(current, str) and path not in keep:
            changes[item.name] = f"@@wasim:{len(getters)}@@"
            getters.append(path)
    return replace(value, **changes)


def _compile_splice(template: CallbackTemplate, prototype: Tap,
                    conditions: tuple[str, ...] = ()) -> Callable[[Tap], bytes] | None:
    getters: list[str] = []
    unset = frozenset(c for c in conditions if not attrgetter(c)(prototype))
    marked = _with_markers(prototype, getters, keep=unset)
    try:
        text = to_wire(template.document(marked)).decode("ascii")
    except WasimError:
        return None
    pieces = _MARKER.split(text)
    literals = pieces[0::2]
    readers = [attrgetter(getters[int(i)]) for i in pieces[1::2]]
    escape = encode_basestring_ascii

    def splice(tap: Tap) -> bytes:
        out = [literals[0]]
        for read, literal in zip(readers, literals[1:], strict=True):
            value = read(tap)
            if type(value) is not str:
                return to_wire(template.document(tap))
            text = escape(value)[1:-1].replace("/", "\\/")
            out.append(php_del(text) if "\x7f" in value else text)
            out.append(literal)
        return "".join(out).encode("ascii")

    if splice(prototype) != to_wire(template.document(prototype)):
        return None
    return splice


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class RenderOptions:
    """Everything `wasim render` takes: what to generate, with which template and changes."""

    taps: TapOptions
    count: int = 1
    template: str = DEFAULT_TEMPLATE
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class Rendered:
    """One rendered callback: the tap it came from and the exact body bytes."""

    tap: Tap
    body: bytes


def render_tap(template: CallbackTemplate, tap: Tap, overrides: tuple[Override, ...] = ()) -> bytes:
    """The wire bytes of the callback for `tap`, with `overrides` applied."""
    if not overrides:
        return template.wire(tap)
    document = template.document(tap)
    apply_overrides(document, overrides)
    return to_wire(document)


def render_callbacks(options: RenderOptions) -> Iterator[Rendered]:
    """Render `options.count` callbacks, each a new user's tap, reproducibly from the seed."""
    factory = TapFactory(options.taps)
    template = CallbackTemplate(find_template(options.template), fake=factory.fake)
    for tap in factory.taps(options.count):
        yield Rendered(tap, render_tap(template, tap, options.overrides))

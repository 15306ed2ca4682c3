"""What a template or scenario file may touch: a data-only `fake`, bounded Jinja, a confined loader.

Templates and scenario files are shared like Postman collections, so they are hostile input.
Jinja's sandbox blocks `_` attributes, but it cannot see inside an object that looks names up
itself (Faker's `get_formatter`, `format`, `parse` reach any attribute, and from there
`__globals__`). So templates never see the Faker: they see `Fake`, a fixed list of
data-producing calls whose arguments are plain, bounded data and whose results are plain
str/int/float/bool (or lists of them). Rendering itself is bounded in time, loop iterations,
operator results and output size, and files can only include files in their own folder.

One module (about 1,000 lines) on purpose: the data-only `fake`, the bounded environment and
its allocation budget guard one boundary together, and a gap between two of them is a way
out; the bounded filters and the budget's size estimates are the next to split off.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import MAX_RANGE, SandboxedEnvironment, safe_range
from jinja2.utils import Cycler, Joiner, Namespace, generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

from simulator.errors import WasimError

# --- limits ----------------------------------------------------------------------------------
# Generous for any real template (the built-in ones use a tiny fraction of each), small enough
# that a hostile file ends in a clear error within seconds and a few MB instead of spinning or
# eating the machine's memory. Every one is per render: one callback, or one scenario file.

RENDER_SECONDS = 5.0  # wall-clock budget, checked at every call, operator, filter and loop step
MAX_OUTPUT_CHARS = 4_000_000  # the rendered text, and any one string or list made on the way
MAX_LOOP_ITERATIONS = 1_000_000  # all `{% for %}` steps of one render together
# Everything printed, including into {% set %} blocks, macros and filter blocks, which Jinja
# joins into strings of their own before the output ever sees them.
MAX_EMITTED_CHARS = 4 * MAX_OUTPUT_CHARS
MAX_INT_BITS = 4_096  # a `*` or `**` result with more bits (~1,233 digits) is refused
MAX_WIDTH = 10_000  # width/count arguments of filters and str methods (center, ljust, round...)
MAX_PATTERN = 1_000  # the text of fake.numerify/bothify/lexify/hexify and other text arguments
MAX_COUNT = 10_000  # element counts: fake.words(nb), random_elements(length), list arguments
MAX_FAKE_TEXT = 100_000  # fake.text(max_nb_chars), fake.pystr(max_chars)
MAX_FAKE_INT = 10**18  # the range of fake.random_int and fake.pyint
# What one render may make in total, in bytes as CPython stores it (about; see _cost): every
# string, list and dict a step builds or keeps, each printed piece, each loop step. Counted,
# never freed, so a value built again and again counts each time: a real template uses well
# under 1 MB; a hostile one ends here instead of taking the machine's memory.
MAX_RENDER_BYTES = 32 << 20

_clock: Callable[[], float] = time.monotonic  # tests replace it to step time deterministically


_T = TypeVar("_T")


class RenderLimit(SecurityError):
    """A template or scenario went past one of the rendering limits above."""


@dataclass
class _Budget:
    deadline: float
    iterations: int = 0
    emitted: int = 0
    allocated: int = 0


_budget: ContextVar[_Budget | None] = ContextVar("wasim_render_budget", default=None)


def _tick() -> None:
    budget = _budget.get()
    if budget is not None and _clock() > budget.deadline:
        raise RenderLimit(f"rendering took longer than {RENDER_SECONDS:g} s (the limit); "
                          "a loop or a call does too much")


def _check_size(value: Any, what: str = "a value") -> Any:
    if isinstance(value, str | list | tuple | bytes) and len(value) > MAX_OUTPUT_CHARS:
        raise RenderLimit(f"{what} grew past {MAX_OUTPUT_CHARS:,} characters (the limit)")
    return value


def _str_cost(text: str | bytes) -> int:
    if len(text) <= 1 and (not text or ord(text) < 256):
        return 0  # CPython keeps one copy of each of these
    if isinstance(text, bytes) or text.isascii():
        return 49 + len(text)
    return 76 + 4 * len(text)  # UCS-4 at worst


def _shallow_cost(value: Any) -> int:
    if isinstance(value, str | bytes):
        return _str_cost(value)
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return 0 if -5 <= value <= 256 else 28 + 4 * (value.bit_length() // 30)
    if isinstance(value, float):
        return 24
    if isinstance(value, list | tuple | set | frozenset):
        return 64 + 8 * len(value) + (24 * len(value) if isinstance(value, set | frozenset)
                                      else 0)
    if isinstance(value, dict):
        return 64 + 64 * len(value)
    return 0


def _cost(value: Any, limit: int) -> int:
    """About the bytes `value` and the values it holds directly take (stops past `limit`).

    Items are counted even when shared with another value: a value's cost is an upper bound,
    which is what a budget needs.
    """
    size = _shallow_cost(value)
    items: Iterable[Any] = ()
    if isinstance(value, list | tuple | set | frozenset):
        items = value
    elif isinstance(value, dict):
        items = itertools.chain.from_iterable(value.items())
    for item in items:
        if size > limit:
            break
        size += _shallow_cost(item)
    return size


def _remaining() -> int:
    budget = _budget.get()
    return MAX_RENDER_BYTES if budget is None else MAX_RENDER_BYTES - budget.allocated


def _over_budget(what: str) -> RenderLimit:
    return RenderLimit(f"{what} would take the render past {MAX_RENDER_BYTES >> 20} MB of "
                       "memory (the limit)")


def charge(cost: int, what: str = "a value") -> None:
    """Count `cost` bytes against this render's memory budget (MAX_RENDER_BYTES)."""
    budget = _budget.get()
    if budget is not None:
        budget.allocated += cost
        if budget.allocated > MAX_RENDER_BYTES:
            raise _over_budget(what)


def charge_value(value: _T, what: str = "a value") -> _T:
    """Charge what `value` takes (see _cost) and return it."""
    budget = _budget.get()
    if budget is not None and not isinstance(value, bool | type(None)):
        charge(_cost(value, MAX_RENDER_BYTES - budget.allocated), what)
    return value


def _afford(cost: int, what: str) -> None:
    """Refuse a step that would make `cost` bytes, before it makes them."""
    if cost > _remaining():
        raise _over_budget(what)


def _charged(iterable: Iterable[Any], what: str) -> Iterator[Any]:
    """`iterable`, charging every item it yields as if it were kept (8 bytes and its cost)."""
    for item in iterable:
        charge(8 + _shallow_cost(item), what)
        yield item


def text_size(value: Any, limit: int = MAX_OUTPUT_CHARS) -> int:
    """About how many characters str(value) makes; stops counting once past `limit`."""
    size, stack = 0, [value]
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            size += len(item) + 2
        elif isinstance(item, dict):
            size += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            size += 2 + 2 * len(item)
            stack.extend(item)
        else:
            size += 24  # a number, None, or an object's short repr
    return size


def check_text(value: Any, what: str = "a value") -> None:
    """Refuse turning `value` into text when that text would pass MAX_OUTPUT_CHARS."""
    if not isinstance(value, str | int | float | bool | type(None)) \
            and text_size(value) > MAX_OUTPUT_CHARS:
        raise RenderLimit(f"{what} would print as more than {MAX_OUTPUT_CHARS:,} characters "
                          "(the limit)")


def _check_width(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_WIDTH:
        raise RenderLimit(f"{what}: {value} is above {MAX_WIDTH:,} (the limit)")


def render_bounded(chunks: Callable[[], Iterable[str]]) -> str:
    """Join what `chunks()` yields, within the time, loop and output limits of one render."""
    token = _budget.set(_Budget(_clock() + RENDER_SECONDS))
    try:
        out: list[str] = []
        size = 0
        pieces = iter(chunks())
        # In batches: summing lengths in C keeps the check off the per-chunk hot path, and
        # joining each batch keeps one string per 64 pieces instead of 64 small objects.
        while batch := list(itertools.islice(pieces, 64)):
            size += sum(map(len, batch))
            if size > MAX_OUTPUT_CHARS:
                raise RenderLimit(f"the output grew past {MAX_OUTPUT_CHARS:,} characters "
                                  "(the limit)")
            out.append("".join(batch))
        return "".join(out)
    finally:
        _budget.reset(token)


# --- the `fake` facade -------------------------------------------------------------------------

_Scalar = str | int | float | bool


@dataclass(frozen=True)
class _Param:
    name: str
    kind: str  # "text", "int", "bool", "items" or "choice"
    low: int = 0
    high: int = 0
    choices: tuple[str, ...] = ()


def _text(name: str, high: int = MAX_PATTERN) -> _Param:
    return _Param(name, "text", 0, high)


def _int(name: str, low: int, high: int) -> _Param:
    return _Param(name, "int", low, high)


def _flag(name: str) -> _Param:
    return _Param(name, "bool")


def _items(name: str) -> _Param:
    return _Param(name, "items", 0, MAX_COUNT)


def _choice(name: str, *choices: str) -> _Param:
    return _Param(name, "choice", choices=choices)


_NO_ARGS = (
    "name", "first_name", "last_name", "name_male", "name_female", "first_name_male",
    "first_name_female", "prefix", "suffix", "city", "state", "country", "postcode",
    "street_address", "street_name", "building_number", "address", "company", "company_suffix",
    "catch_phrase", "bs", "job", "safe_email", "free_email", "company_email", "user_name",
    "phone_number", "msisdn", "uuid4", "color_name", "safe_color_name", "hex_color",
    "currency_code", "language_code", "md5", "sha1", "sha256", "random_digit",
    "random_digit_not_null", "random_letter", "random_lowercase_letter",
    "random_uppercase_letter", "ipv4", "ipv4_private", "whatsapp_numeric_id", "whatsapp_uuid4",
)

# Every call `fake` offers, with its parameters in Faker's own order; nothing else is reachable.
FAKE_CALLS: dict[str, tuple[_Param, ...]] = {
    **{name: () for name in _NO_ARGS},
    "country_code": (_choice("representation", "alpha-2", "alpha-3"),),
    "email": (_flag("safe"), _text("domain", 253)),
    "domain_name": (_int("levels", 1, 10),),
    "mac_address": (_flag("multicast"),),
    "word": (_text("part_of_speech", 20), _items("ext_word_list")),
    "words": (_int("nb", 0, MAX_COUNT), _items("ext_word_list"), _text("part_of_speech", 20),
              _flag("unique")),
    "sentence": (_int("nb_words", 0, MAX_COUNT), _flag("variable_nb_words"),
                 _items("ext_word_list")),
    "sentences": (_int("nb", 0, 1_000), _items("ext_word_list")),
    "paragraph": (_int("nb_sentences", 0, 1_000), _flag("variable_nb_sentences"),
                  _items("ext_word_list")),
    "text": (_int("max_nb_chars", 5, MAX_FAKE_TEXT), _items("ext_word_list")),
    "password": (_int("length", 0, 1_000), _flag("special_chars"), _flag("digits"),
                 _flag("upper_case"), _flag("lower_case")),
    "slug": (_text("value"),),
    "numerify": (_text("text"),),
    "bothify": (_text("text"), _text("letters")),
    "lexify": (_text("text"), _text("letters")),
    "hexify": (_text("text"), _flag("upper")),
    "random_int": (_int("min", -MAX_FAKE_INT, MAX_FAKE_INT),
                   _int("max", -MAX_FAKE_INT, MAX_FAKE_INT), _int("step", 1, MAX_FAKE_INT)),
    "random_number": (_int("digits", 0, 18), _flag("fix_len")),
    "random_letters": (_int("length", 0, MAX_COUNT),),
    "random_element": (_items("elements"),),
    "random_elements": (_items("elements"), _int("length", 0, MAX_COUNT), _flag("unique")),
    "random_sample": (_items("elements"), _int("length", 0, MAX_COUNT)),
    "pybool": (_int("truth_probability", 0, 100),),
    "boolean": (_int("chance_of_getting_true", 0, 100),),
    "pyint": (_int("min_value", -MAX_FAKE_INT, MAX_FAKE_INT),
              _int("max_value", -MAX_FAKE_INT, MAX_FAKE_INT), _int("step", 1, MAX_FAKE_INT)),
    "pyfloat": (_int("left_digits", 0, 15), _int("right_digits", 0, 15), _flag("positive")),
    "pystr": (_int("min_chars", 0, MAX_FAKE_TEXT), _int("max_chars", 0, MAX_FAKE_TEXT),
              _text("prefix"), _text("suffix")),
    "whatsapp_number": (_text("country", 40),),
    "whatsapp_profile_name": (_text("country", 40),),
    "whatsapp_hex_id": (_int("length", 1, 64),),
    "whatsapp_user_wamid": (_text("customer", 20), _choice("platform", "android", "ios", "web")),
    "whatsapp_business_wamid": (_text("customer", 20),),
    "whatsapp_country_of": (_text("number", 40),),
}


def _is_scalar(value: Any) -> bool:
    return type(value) in (str, int, float, bool)


def _checked(call: str, param: _Param, value: Any) -> Any:
    where = f"fake.{call}: {param.name}"
    if param.kind == "bool":
        if type(value) is not bool:
            raise TypeError(f"{where} must be true or false")
        return value
    if param.kind in ("text", "choice"):
        if type(value) is not str:
            raise TypeError(f"{where} must be text")
        if param.kind == "choice" and value not in param.choices:
            raise ValueError(f"{where} must be one of {', '.join(param.choices)}")
        if len(value) > param.high and param.kind == "text":
            raise ValueError(f"{where} is longer than {param.high:,} characters (the limit)")
        return value
    if param.kind == "int":
        if type(value) is not int:
            raise TypeError(f"{where} must be a whole number")
        if not param.low <= value <= param.high:
            raise ValueError(f"{where} must be from {param.low:,} to {param.high:,}")
        return value
    # items: a list of plain values, copied so Faker never holds the template's own list
    if not isinstance(value, list | tuple) or not all(_is_scalar(v) for v in value):
        raise TypeError(f"{where} must be a list of plain values (text, numbers, booleans)")
    if len(value) > param.high:
        raise ValueError(f"{where} has more than {param.high:,} items (the limit)")
    return tuple(value)


def _plain_result(call: str, value: Any) -> Any:
    if value is None or _is_scalar(value):
        return value
    if isinstance(value, list | tuple) and all(_is_scalar(v) for v in value):
        return list(value)
    raise TypeError(f"fake.{call} returned {type(value).__name__}, not plain data")


class _Call:
    """One call offered to templates; its workings are `_` names, which the sandbox hides."""

    __slots__ = ("_label", "_run")

    def __init__(self, label: str, run: Callable[..., Any]) -> None:
        self._label = label
        self._run = run

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self._label}>"


def _fake_call(formatter: Callable[..., Any], call: str,
               params: tuple[_Param, ...]) -> Callable[..., Any]:
    by_name = {p.name: p for p in params}

    def run(*args: Any, **kwargs: Any) -> Any:
        if len(args) > len(params):
            raise TypeError(f"fake.{call} takes at most {len(params)} arguments")
        given: dict[str, Any] = {}
        for param, value in zip(params, args, strict=False):
            given[param.name] = value
        for name, value in kwargs.items():
            if name not in by_name:
                known = ", ".join(by_name) or "no arguments"
                raise TypeError(f"fake.{call} has no argument {name!r} (it takes {known})")
            if name in given:
                raise TypeError(f"fake.{call} got {name!r} twice")
            given[name] = value
        # Only what the template gave reaches Faker, so Faker's defaults (and its draws from
        # the seeded Random) are exactly those of calling Faker directly.
        checked = {name: _checked(call, by_name[name], value) for name, value in given.items()}
        try:
            result = formatter(**checked)
        except WasimError as exc:  # the WhatsApp provider's own errors (an unknown country)
            raise ValueError(f"fake.{call}: {exc.what}") from None
        return _plain_result(call, result)

    return run


def _missing(call: str, **_: Any) -> Any:
    raise ValueError(f"fake.{call} is not available with this Faker")


class Fake:
    """`fake` in templates and scenarios: seeded data calls only (see FAKE_CALLS)."""

    __slots__ = tuple(FAKE_CALLS)

    def __init__(self, faker: Any) -> None:
        for call, params in FAKE_CALLS.items():
            # Bound methods are fetched once here, so nothing later looks a name up on Faker.
            formatter = getattr(faker, call, None)
            if formatter is None:  # another Faker version or locale may lack one
                formatter = functools.partial(_missing, call)
            object.__setattr__(self, call, _Call(f"fake.{call}",
                                                 _fake_call(formatter, call, params)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("fake is read-only")

    def __repr__(self) -> str:
        return "<fake: seeded data calls>"


def fake_facade(faker: Any) -> Fake | None:
    """The `fake` a template sees for `faker` (None stays None; a Fake is kept)."""
    if faker is None or isinstance(faker, Fake):
        return faker
    return Fake(faker)


def plain_env(env: Any) -> dict[str, str]:
    """The environment as templates see it: a new dict of str to str, nothing else."""
    return {str(k): str(v) for k, v in dict(env or {}).items()}


# --- the bounded sandbox -----------------------------------------------------------------------


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    for value, what in ((n, "lipsum n"), (min, "lipsum min"), (max, "lipsum max")):
        if type(value) is not int or not 0 <= value <= 1_000:
            raise RenderLimit(f"{what} must be a whole number from 0 to 1,000")
    return str(generate_lorem_ipsum(n, html, min, max))  # plain str, not Markup


def _bounded_range(*args: int) -> range:
    try:
        return safe_range(*args)  # at most jinja2.sandbox.MAX_RANGE (100,000) items
    except OverflowError:
        raise RenderLimit(f"a range of more than {MAX_RANGE:,} items (the limit)") from None


# Jinja's default globals, each behind a `_Call`: templates get the function, never a class.
_GLOBALS: dict[str, Any] = {
    "range": _Call("range", _bounded_range),
    "dict": _Call("dict", dict),
    "lipsum": _Call("lipsum", _lipsum),
    "cycler": _Call("cycler", Cycler),
    "joiner": _Call("joiner", Joiner),
    "namespace": _Call("namespace", Namespace),
}

# Filters whose int arguments are widths or counts that size their output.
_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice",
                            "round", "tojson", "filesizeformat"})
_STR_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_format_size(fmt: str, fields: int, widths: int, args: Any) -> None:
    """Refuse a format whose result could pass MAX_OUTPUT_CHARS: every field may repeat the
    largest value (`%(a)s` or `{0}` many times over) padded to its width."""
    if not fields:
        return
    largest = max((text_size(a) for a in args), default=0)
    if len(fmt) + widths + fields * largest > MAX_OUTPUT_CHARS:
        raise RenderLimit(f"a format with {fields:,} fields would make more than "
                          f"{MAX_OUTPUT_CHARS:,} characters (the limit)")


def _format_values(args: Any) -> list[Any]:
    if isinstance(args, tuple):
        return list(args)
    if isinstance(args, dict):
        return list(args.values())
    return [args]


def _check_percent_format(fmt: str, args: Any) -> None:
    widths = 0
    fields = _STR_FIELD.findall(fmt)
    for width, precision in fields:
        for part in (width, precision):
            if part.isdigit():
                if int(part) > MAX_WIDTH:
                    raise RenderLimit(f"a % format width of {part} is above {MAX_WIDTH:,} "
                                      "(the limit)")
                widths += int(part)
    if "*" in fmt:
        for value in args if isinstance(args, tuple) else (args,):
            _check_width(value, "a % format * width")
            if isinstance(value, int):
                widths += abs(value)
    _check_format_size(fmt, len(fields), widths, _format_values(args))


def _check_brace_format(fmt: str) -> tuple[int, int]:
    """Check the widths of a str.format string; (its fields, the sum of their widths)."""
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return 0, 0  # str.format raises the same error itself
    widths = 0
    for _, _, spec, _ in fields:
        if spec and "{" in spec:
            raise RenderLimit("nested {} in a format spec are not allowed in a template")
        for number in re.findall(r"\d+", spec or ""):
            if int(number) > MAX_WIDTH:
                raise RenderLimit(f"a format width of {number} is above {MAX_WIDTH:,} "
                                  "(the limit)")
            widths += int(number)
    return sum(1 for field in fields if field[1] is not None), widths


_SPACE_RUN = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_LINE_BREAK = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_TITLE_SPLIT = re.compile(r"[-\s({\[<]+")


def _count(pattern: re.Pattern[str], text: str) -> int:
    """How many times `pattern` matches `text`, without keeping the matches."""
    return sum(1 for _ in pattern.finditer(text))


def _pieces_cost(pieces: int, text: str) -> int:
    """What splitting `text` into `pieces` strings takes: the list, the strings, the text."""
    return pieces * (8 + 60) + 2 * _str_cost(text)


def _estimate(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """Roughly how many characters `value.name(*args)` or `value | name(*args)` will make."""
    if not isinstance(value, str | list | tuple):
        return 0
    extra = [*args, *kwargs.values()]
    if name == "replace" and len(extra) >= 2 and isinstance(value, str):
        old, new = str(extra[0]), str(extra[1])
        return len(value) + (len(value) // max(len(old), 1) + 1) * len(new)
    if name == "join":
        sep = str(extra[0]) if extra and not isinstance(value, str) else (
            value if isinstance(value, str) else "")
        items = extra[0] if isinstance(value, str) and extra else value
        if isinstance(items, list | tuple | str):
            texts = sum(len(i) if isinstance(i, str) else 24 for i in items)
            return texts + len(sep) * len(items)
    if name == "indent" and isinstance(value, str):
        width = extra[0] if extra else 4
        indent = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        return len(value) + (_count(_LINE_BREAK, value) + 1) * indent
    if name == "expandtabs" and isinstance(value, str):
        size = extra[0] if extra and isinstance(extra[0], int) else 8
        return len(value) + value.count("\t") * max(size, 0)
    if name == "wordwrap" and isinstance(value, str):
        wrap = next((a for a in extra if isinstance(a, str)), "\n")
        return len(value) * (1 + len(wrap))
    if name in ("urlencode", "escape", "e", "forceescape") and isinstance(value, str):
        return len(value) * (9 if name == "urlencode" else 5)  # %E2%82%AC, &amp;
    if name == "translate" and isinstance(value, str) and extra and isinstance(extra[0], dict):
        longest = max((len(v) for v in extra[0].values() if isinstance(v, str)), default=1)
        return len(value) * max(longest, 1)
    return 0


# Steps that cut a text into a list of pieces (or pieces kept while they work), and how to
# count those pieces without making them: each piece is a new string object of ~60 bytes.
def _split_pieces(name: str, value: str, args: tuple[Any, ...]) -> int:
    if name in ("split", "rsplit"):
        sep = args[0] if args else None
        if isinstance(sep, str) and sep:
            return value.count(sep) + 1
        return _count(_SPACE_RUN, value) + 1
    if name == "splitlines":
        return _count(_LINE_BREAK, value) + 1
    if name in ("indent",):
        return _count(_LINE_BREAK, value) + 1
    if name in ("wordwrap", "urlize", "striptags"):
        return 2 * _count(_SPACE_RUN, value) + 1
    if name == "wordcount":
        return _count(_WORD, value)
    if name == "title":
        return 2 * _count(_TITLE_SPLIT, value) + 1
    return 0


_SPLITTING = frozenset({"split", "rsplit", "splitlines", "indent", "wordwrap", "urlize",
                        "striptags", "wordcount", "title"})
# Filters that make a list of a text's characters (or of an iterable's items).
_LISTING_FILTERS = frozenset({"list", "sort", "unique", "batch", "slice", "groupby",
                              "dictsort", "reverse", "join", "sum", "items"})
# Filters whose result is a value they were given (or a part of it): nothing new to count.
_PICKING_FILTERS = frozenset({"first", "last", "random", "min", "max", "attr", "default",
                              "d"})


def _step_cost(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """Roughly the bytes one step (a filter or a method of `value`) holds while it works."""
    if isinstance(value, str):
        chars = _estimate(name, value, args, kwargs)
        cost = 2 * chars if chars else 0
        if name in _SPLITTING and len(value) > 4_096:  # short texts cannot matter
            cost = max(cost, _pieces_cost(_split_pieces(name, value, args), value))
        if name in _LISTING_FILTERS and name not in ("join", "reverse"):
            # One item per character; those past Latin-1 are new objects of ~80 bytes.
            cost = max(cost, 64 + len(value) * (8 if value.isascii() else 88))
        return cost
    return 0


def _check_call_args(name: str, value: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> None:
    for arg in (*args, *kwargs.values()):
        _check_width(arg, f"the argument of {name}")
    if _estimate(name, value, args, kwargs) > MAX_OUTPUT_CHARS:
        raise RenderLimit(f"{name} would make more than {MAX_OUTPUT_CHARS:,} characters "
                          "(the limit)")
    _afford(_step_cost(name, value, args, kwargs), name)


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    offset = 1 if hasattr(func, "jinja_pass_arg") else 0  # context/environment comes first
    picking = name in _PICKING_FILTERS

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        value, rest = (args[offset], args[offset + 1:]) if len(args) > offset else (None, ())
        if name == "join" and not isinstance(value, str | list | tuple):
            # A range or generator: take the items first, so the estimate sees them all.
            value = list(_charged(_loop(value), "the items given to join"))
            args = (*args[:offset], value, *rest)
        elif isinstance(value, Iterator):
            # A generator (map, select...): every item it makes may be kept by the filter.
            value = _charged(value, f"the items given to the {name} filter")
            args = (*args[:offset], value, *rest)
        check_text(value, f"the value given to the {name} filter")
        if name in _WIDTH_FILTERS:
            _check_call_args(name, value, rest, kwargs)
        else:
            if _estimate(name, value, rest, kwargs) > MAX_OUTPUT_CHARS:
                raise RenderLimit(f"the {name} filter would make more than "
                                  f"{MAX_OUTPUT_CHARS:,} characters (the limit)")
            _afford(_step_cost(name, value, rest, kwargs), f"the {name} filter")
        if name == "format" and isinstance(value, str):
            _check_percent_format(value, kwargs if kwargs else tuple(rest))
        result = _check_size(func(*args, **kwargs), f"the result of the {name} filter")
        if not picking and result is not value and not isinstance(result, Iterator):
            charge_value(result, f"the {name} filter")
        return result

    return guarded


def _bounded_dumps(value: Any, **kwargs: Any) -> str:
    """json.dumps for the `tojson` filter, stopped once its text passes MAX_OUTPUT_CHARS."""
    check_text(value, "the value given to tojson")
    kwargs.setdefault("allow_nan", False)  # NaN is not JSON; a callback must parse
    out: list[str] = []
    batch: list[str] = []
    size = 0
    for chunk in json.JSONEncoder(**kwargs).iterencode(value):
        batch.append(chunk)
        if len(batch) == 256:
            size += sum(map(len, batch))
            text = "".join(batch)
            # tojson then spells each of <>&' as a 6-character \\u escape
            size += 5 * sum(map(text.count, "<>&'"))
            if size > MAX_OUTPUT_CHARS:
                raise RenderLimit(f"tojson would make more than {MAX_OUTPUT_CHARS:,} "
                                  "characters (the limit)")
            charge(_str_cost(text), "tojson")
            out.append(text)
            batch.clear()
    out.append("".join(batch))
    if size + len(out[-1]) > MAX_OUTPUT_CHARS:
        raise RenderLimit(f"tojson would make more than {MAX_OUTPUT_CHARS:,} characters "
                          "(the limit)")
    return "".join(out)


# Methods that grow the list, dict or set they belong to, and where their new items come from.
_GROWING = frozenset({"append", "insert", "extend", "update", "setdefault", "add",
                      "fromkeys", "symmetric_difference_update"})


def _growth(owner: Any, name: str, args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Charge what `owner.name(*args)` adds to `owner`; iterators are charged as they run."""
    per_item = 8 if isinstance(owner, list) else 64
    what = f"{type(owner).__name__}.{name}"
    if name in ("append", "insert", "add", "setdefault"):
        charge(per_item + _shallow_cost(args[-1] if args else None), what)
        return args, kwargs
    charge(per_item * len(kwargs), what)
    checked = []
    for arg in args:
        if isinstance(arg, str):
            _afford(64 + len(arg) * (per_item + (0 if arg.isascii() else 80)), what)
            charge(len(arg) * (per_item + (0 if arg.isascii() else 80)), what)
        elif isinstance(arg, range):
            _afford(len(arg) * (per_item + 32), what)
            charge(len(arg) * (per_item + 32), what)
        elif isinstance(arg, list | tuple | dict | set | frozenset):
            _afford(len(arg) * per_item, what)
            charge(len(arg) * per_item, what)
        elif isinstance(arg, Iterable) and not isinstance(arg, bytes):
            arg = _charged(_loop(arg), what)
        checked.append(arg)
    return tuple(checked), kwargs


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _seq_bytes(seq: str | bytes | list[Any] | tuple[Any, ...]) -> int:
    """The bytes a copy of `seq` takes (its items are shared, not copied)."""
    if isinstance(seq, bytes):
        return len(seq)
    if isinstance(seq, str):
        return len(seq) if seq.isascii() else 4 * len(seq)
    return 8 * len(seq)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints and right > 0 and abs(left) > 1 \
            and right * _int_bits(left) > MAX_INT_BITS:
        raise RenderLimit(f"{left} ** {right} has more than {MAX_INT_BITS:,} bits (the limit)")
    if operator == "*":
        if ints and _int_bits(left) + _int_bits(right) > MAX_INT_BITS:
            raise RenderLimit(f"a product with more than {MAX_INT_BITS:,} bits (the limit)")
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int):
                if len(seq) * times > MAX_OUTPUT_CHARS:
                    raise RenderLimit(f"repeating {len(seq):,} items {times:,} times makes "
                                      f"more than {MAX_OUTPUT_CHARS:,} (the limit)")
                _afford(_seq_bytes(seq) * max(times, 0), "repeating a value")
    if operator == "+" and isinstance(left, str | bytes | list | tuple) \
            and isinstance(right, str | bytes | list | tuple):
        if len(left) + len(right) > MAX_OUTPUT_CHARS:
            raise RenderLimit(f"joining makes more than {MAX_OUTPUT_CHARS:,} items (the limit)")
        _afford(_seq_bytes(left) + _seq_bytes(right), "joining two values with +")
    if operator == "%" and isinstance(left, str):
        check_text(right, "a % format's values")
        _check_percent_format(left, right)


def _loop(iterable: Any) -> Iterator[Any]:
    budget = _budget.get()
    # `loop.length` keeps every item (8 bytes each); a text's characters are new objects.
    fresh = isinstance(iterable, str)
    for item in iterable:
        if budget is not None:
            budget.iterations += 1
            if budget.iterations > MAX_LOOP_ITERATIONS:
                raise RenderLimit(f"loops ran more than {MAX_LOOP_ITERATIONS:,} steps in one "
                                  "render (the limit)")
            _tick()
            charge(8 + _shallow_cost(item) if fresh else 8, "a loop")
        yield item


def count_output(size: int, cost: int | None = None) -> None:
    """Count `size` printed characters against MAX_EMITTED_CHARS (self-counting filters).

    `cost` is the memory the printed piece holds until its block is joined (size + 8 unless
    given): a {% set %} block or a macro keeps every piece it prints.
    """
    budget = _budget.get()
    if budget is not None:
        budget.emitted += size
        if budget.emitted > MAX_EMITTED_CHARS:
            raise RenderLimit(f"the template printed more than {MAX_EMITTED_CHARS:,} "
                              "characters (the limit), counting set blocks, macros and "
                              "includes")
        charge(size + 8 if cost is None else cost, "printing")


@jinja2.pass_context  # never folded at compile time: it must count at every render
def _out(context: jinja2.runtime.Context, value: Any) -> str:
    if type(value) is not str:
        check_text(value, "a printed value")
    text = str(value)  # what Jinja does to an output value (autoescape is off)
    count_output(len(text), 8 + len(text) if text.isascii() else 8 + 4 * len(text))
    return text


@jinja2.pass_context
def _static(context: jinja2.runtime.Context, size: int, pieces: int = 1) -> str:
    count_output(size, 8 * pieces)  # the literal text is shared; each piece is a reference
    return ""


def _concat(*parts: Any) -> str:
    for part in parts:
        check_text(part, "a part of ~")
    texts = [str(p) for p in parts]  # str() of a StrictUndefined raises, naming the variable
    if sum(map(len, texts)) > MAX_OUTPUT_CHARS:
        raise RenderLimit(f"~ makes more than {MAX_OUTPUT_CHARS:,} characters (the limit)")
    _afford(sum(map(_str_cost, texts)), "~")
    return charge_value("".join(texts), "~")


def _env_call(name: str, *args: nodes.Expr, lineno: int) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(name, lineno=lineno), list(args), [], None,
                      None, lineno=lineno)


class _Bounds(NodeTransformer):
    """Routes loops, `~` and printing through the budget (the sandbox has no hook for them)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _env_call("wasim_loop", node.iter, lineno=node.lineno)  # type: ignore[arg-type]
        return node

    def __init__(self, counted: frozenset[str]) -> None:
        self.counted = counted  # filters that count their own output (the hot `json`)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        # Everything printed is counted, static text included: a loop, a macro or an include
        # can repeat either into a {% set %} block, which the output limit never sees.
        self.generic_visit(node)
        data = [c for c in node.nodes if isinstance(c, nodes.TemplateData)]
        static = sum(len(c.data) for c in data)
        children: list[nodes.Expr] = [
            child if isinstance(child, nodes.TemplateData)
            or (isinstance(child, nodes.Filter) and child.name in self.counted)
            else nodes.Filter(child, "wasim_out", [], [], None, None, lineno=child.lineno)
            for child in node.nodes]
        if static:
            children.insert(0, nodes.Filter(nodes.Const(static), "wasim_static",
                                            [nodes.Const(len(data))], [], None, None,
                                            lineno=node.lineno))
        node.nodes = children
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _env_call("wasim_concat", *node.nodes, lineno=node.lineno)


class BoundedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox, with the limits above and only plain functions as globals."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    counted_filters: frozenset[str] = frozenset()  # filters that call count_output themselves
    wasim_loop = staticmethod(_loop)
    wasim_concat = staticmethod(_concat)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals.clear()
        self.globals.update(_GLOBALS)
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}
        self.filters["wasim_out"] = _out  # the transform above prints through these
        self.filters["wasim_static"] = _static
        # tojson's text is made through a bounded encoder (see _bounded_dumps).
        self.policies["json.dumps_function"] = _bounded_dumps

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        tree = _Bounds(self.counted_filters).visit(source)
        tree.set_environment(self)
        return super()._generate(tree, name, filename, defer_init=defer_init)

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any,
                   right: Any) -> Any:
        """An arithmetic operator, refused when its result would be too big."""
        _tick()
        _check_binop(operator, left, right)
        result = _check_size(super().call_binop(context, operator, left, right))
        return charge_value(result, f"the {operator} operator")

    def getitem(self, obj: Any, argument: Any) -> Any:
        """obj[argument]; a slice is a new value, counted against the memory budget."""
        result = super().getitem(obj, argument)
        if isinstance(argument, slice) and result is not obj:
            charge_value(result, "a slice")
        return result

    def call(__self, __context: jinja2.runtime.Context, __obj: Any,
             *args: Any, **kwargs: Any) -> Any:
        """A call from a template, within the time budget and the size limits."""
        _tick()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "a call")
        if isinstance(__obj, _Call):
            name = __obj._label
        elif isinstance(owner, str | bytes | int):  # widths, joins, int.to_bytes
            if name == "join" and args and not isinstance(args[0], str | list | tuple):
                # See the items before joining.
                args = (list(_charged(_loop(args[0]), "the items given to join")), *args[1:])
            _check_call_args(name, owner, args, kwargs)
        elif isinstance(owner, list | dict | set | type) and name in _GROWING:
            args, kwargs = _growth(owner, name, args, kwargs)
        result = _check_size(super().call(__context, __obj, *args, **kwargs),
                             "the result of a call")
        if result is not None and result is not owner:
            charge_value(result, f"the result of {name}")
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """str.format and format_map in templates, with widths bounded."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fields, widths = _check_brace_format(value.__self__)
        formatter = wrapped

        def checked(*args: Any, **kwargs: Any) -> str:
            for arg in (*args, *kwargs.values()):
                check_text(arg, "a format value")
            values = [*args, *kwargs.values()]
            if value.__name__ == "format_map" and args and isinstance(args[0], dict):
                values = list(args[0].values())
            _check_format_size(value.__self__, fields, widths, values)
            return charge_value(formatter(*args, **kwargs), "str.format")

        return _Call(f"str.{value.__name__}", checked)


# --- the confined loader -----------------------------------------------------------------------


class ConfinedLoader(jinja2.BaseLoader):
    """Loads `{% include/import/extends %}` only from inside one folder, after resolving links."""

    def __init__(self, root: Path | None, entry: str | None = None) -> None:
        self.root = Path(os.path.realpath(root)) if root is not None else None
        self.entry = entry  # the template the person named: read even if it is a link

    def get_source(self, environment: jinja2.Environment,
                   template: str) -> tuple[str, str | None, Callable[[], bool] | None]:
        """The text of `template`, if it resolves to a file inside the folder."""
        if self.root is None:
            raise SecurityError(f"cannot include {template!r}: a scenario file cannot "
                                "include, import or extend other files")
        shown = repr(template) if len(template) <= 100 else f"{template[:100]!r}..."
        try:
            named = self.root / template
            if template != self.entry:
                real = Path(os.path.realpath(named))
                if not real.is_relative_to(self.root) or real == self.root:
                    raise SecurityError(f"cannot include {shown}: it is outside the "
                                        f"template's folder {self.root} (links are followed)")
                named = real
            exists, regular = named.exists(), named.is_file()
        except (OSError, ValueError) as exc:  # a name too long, a NUL byte in it
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise jinja2.TemplateError(f"cannot include {shown} ({reason})") from None
        if not exists:
            raise jinja2.TemplateNotFound(template, f"no file {shown} in the template's "
                                                    f"folder {self.root}")
        if not regular:  # a FIFO or a device would block or never end
            raise jinja2.TemplateError(f"cannot read {shown}: not a regular file")
        try:
            with named.open("rb") as file:
                data = file.read(MAX_OUTPUT_CHARS + 1)
        except OSError as exc:
            raise jinja2.TemplateError(f"cannot read {template!r} ({exc.strerror})") from None
        if len(data) > MAX_OUTPUT_CHARS:
            raise RenderLimit(f"{template!r} is larger than {MAX_OUTPUT_CHARS:,} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise jinja2.TemplateError(f"{template!r} is not UTF-8 text (byte {exc.start}); "
                                       "save it as UTF-8") from None
        mtime = named.stat().st_mtime
        return text, str(named), lambda: named.exists() and named.stat().st_mtime == mtime

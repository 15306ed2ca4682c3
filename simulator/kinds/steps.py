"""What a scenario step may send besides a tap: any kind (`send: {text: "hi"}`), a reaction
(`react: "👍"`), or the brand's message's statuses (`statuses: [sent, delivered, read]`), and
the disorder real status traffic has, as chaos (wire-format sections 6 and 9)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from simulator.errors import WasimError, did_you_mean
from simulator.kinds import KIND_SPECS
from simulator.kinds.base import KindArgs, KindSpec
from simulator.kinds.status import ERRORS, STATUSES

Send = tuple[str, KindArgs]
ErrorAt = Callable[[str, str, str | None], WasimError]
# The disorder real status traffic has (wire-format section 6 and 9).
DISORDERS = ("sent_after_read", "delivered_missing", "duplicate", "failed_after_sent")


def parse_send(value: Any, path: str, error: ErrorAt) -> Send:
    """`{text: "hi"}`, `{image: {caption: x}}` or `{kind: image, caption: x}`: the fields
    and the shorthand are those the kind declares (its `fields`, its `main` field)."""
    if not isinstance(value, dict) or not value:
        raise error(path, f"expected a mapping such as {{text: hi}}, got {value!r}"[:200],
                    "Name a kind: text, reaction, location, image, list_reply, status...")
    if "kind" in value:
        name, raw = value["kind"], {k: v for k, v in value.items() if k != "kind"}
    elif len(value) == 1:
        name, given = next(iter(value.items()))
        spec = _known(str(name), f"{path}.{name}", error)
        if isinstance(given, dict):
            raw = given
        elif spec.main is not None:
            raw = {spec.main: given}
        elif given is None:
            raw = {}
        else:
            raise error(f"{path}.{name}", f"kind {name} takes a mapping of its fields",
                        f"E.g. {{{name}: {{...}}}}.")
    else:
        raise error(path, "give one kind (a single key) or `kind:` and its fields", None)
    name = str(name)
    spec = _known(name, f"{path}.kind", error)
    values: dict[str, Any] = {}
    for key, item in raw.items():
        key = str(key)
        where = f"{path}.{key}"
        declared = spec.get_field(key)
        if declared is None:
            names = [f.name for f in spec.fields]
            raise error(where, f"unknown field of kind {name}",
                        did_you_mean(key, names) or (f"Fields: {', '.join(names)}."
                                                     if names else "It takes no fields."))
        try:
            values[key] = declared.parse(item)
        except ValueError as exc:
            raise error(where, str(exc), None) from None
    args = KindArgs.of(values)
    broken = spec.broken(args, lambda declared: declared.name)
    if broken is not None:
        raise error(f"{path}.{broken[0]}", broken[1], broken[2])
    return name, args


def _known(name: str, where: str, error: ErrorAt) -> KindSpec:
    spec = KIND_SPECS.get(name)
    if spec is None:
        raise error(where, f"no kind named {name!r}",
                    did_you_mean(name, list(KIND_SPECS)) or f"Kinds: {', '.join(KIND_SPECS)}.")
    return spec


def parse_statuses(value: Any, path: str, error: ErrorAt) -> tuple[Send, ...]:
    """`[sent, delivered, read]` or `[sent, {failed: 131047}]`: one status send each."""
    if not isinstance(value, list) or not value:
        raise error(path, "expected a list of statuses, e.g. [sent, delivered, read]", None)
    sends = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        code = None
        if isinstance(item, dict) and len(item) == 1:
            item, code = next(iter(item.items()))
        if item not in STATUSES:
            raise error(where, f"unknown status {item!r}", f"Use one of {', '.join(STATUSES)}.")
        if code is not None and (item != "failed" or code not in ERRORS):
            raise error(where, f"{item} takes no error {code!r}",
                        f"Use {{failed: CODE}}, CODE one of {', '.join(map(str, ERRORS))}.")
        sends.append(("status", KindArgs(status=str(item), error=code)))
    return tuple(sends)


def disorder(sends: list[Send], rnd: random.Random) -> tuple[list[Send], str]:
    """One of the known disorders applied to a user's status sequence, and its name."""
    statuses = [args.status for _, args in sends]
    possible = [d for d in DISORDERS if _applies(d, statuses)]
    if not possible:
        return sends, ""
    chosen = rnd.choice(possible)
    out = list(sends)
    if chosen == "sent_after_read":
        sent = out.pop(statuses.index("sent"))
        out.insert(statuses.index("read"), sent)  # read moved up by one: sent lands after it
    elif chosen == "delivered_missing":
        out.pop(statuses.index("delivered"))
    elif chosen == "duplicate":
        at = rnd.randrange(len(out))
        out.insert(at + 1, out[at])
    else:
        out.append(("status", KindArgs(status="failed", error=rnd.choice(list(ERRORS)))))
    return out, chosen


def _applies(name: str, statuses: list[str | None]) -> bool:
    if name == "sent_after_read":
        return "sent" in statuses and "read" in statuses \
            and statuses.index("sent") < statuses.index("read")
    if name == "delivered_missing":
        return "delivered" in statuses and "read" in statuses
    if name == "failed_after_sent":
        return "sent" in statuses and "failed" not in statuses
    return True

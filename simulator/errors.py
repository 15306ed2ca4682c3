"""One error type for bad input, and the exit codes every face of wasim uses."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from enum import IntEnum

# An input named inside an error's text, `{{allow_remote}}`: the core names the field, and each
# face shows it as it names its inputs (`--allow-remote`, `allow_remote=True`,
# `--wasim-allow-remote`) through `one_line(name)`; the bare field name otherwise.
_FIELD = re.compile(r"\{\{([a-z][a-z0-9_]*)\}\}")


def named(field: str) -> str:
    """`field` as a reference inside an error's text, shown by each face in its own words."""
    return "{{" + field + "}}"


class ExitCode(IntEnum):
    """Process exit codes, defined once so the CLI, CI and the docs agree."""

    OK = 0
    FAILED = 1  # a delivery, an expectation or a validation failed
    BAD_INPUT = 2  # usage, scenario, template, or a document that is not JSON
    UNREACHABLE = 3  # the target could not be reached at all
    INTERRUPTED = 130


EXIT_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "all good: every callback delivered, every expectation held, the input valid",
    ExitCode.FAILED: "a delivery, an expectation or a validation failed (or a load threshold "
                     "was broken)",
    ExitCode.BAD_INPUT: "bad input: usage, a scenario, a template, a target, a history file, a "
                        "document that is not JSON",
    ExitCode.UNREACHABLE: "the target could not be reached at all",
    ExitCode.INTERRUPTED: "interrupted (Ctrl+C)",
}
"""What each exit code means, for the docs' reference (generated from this table)."""


class WasimError(Exception):
    """A problem the user can fix: what went wrong, where, and what to do next."""

    def __init__(
        self,
        what: str,
        *,
        where: str | None = None,
        hint: str | None = None,
        exit_code: ExitCode = ExitCode.BAD_INPUT,
        field: str | None = None,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.where = where
        # The setting or input the error is about (`timeout`, `url`, `country`): the core
        # names it, and the face that took the value says where (`--timeout`, `file:line`,
        # `wasim.target(timeout=...)`) by setting `where`.
        self.field = field
        self.hint = hint
        self.exit_code = exit_code

    def one_line(self, name: Callable[[str], str] | None = None) -> str:
        """Format as the single line printed on stderr: `where: what. hint`, each field the
        text names shown by `name` (the face's spelling of an input; the field itself if
        None)."""
        def shown(text: str) -> str:
            return _FIELD.sub(lambda match: (name or str)(match.group(1)), text)

        place = self.where or (name(self.field) if name and self.field else self.field)
        parts = [f"{place}: {shown(self.what)}" if place else shown(self.what)]
        if self.hint:
            parts.append(shown(self.hint))
        line = " ".join(p if p.endswith((".", "?", "!", ".)")) else p + "." for p in parts)
        # Never more than one line, whatever a library put in its message.
        return " ".join(line.split())


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """Suggest the closest of `choices` to a mistyped `word`, as a hint, or None."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"Did you mean {close[0]!r}?" if close else None

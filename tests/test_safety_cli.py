"""Fuzzing every command's options with hostile values: exit 0-3, no traceback, one-line errors.

Every command and option is found by walking `simulator.cli`, so a new option is fuzzed the
day it is added. Nothing leaves this machine: targets are a loopback port that nothing
listens on (a socket bound and never listening), and nothing outlives a run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.cli import cli

EXIT_CODES = {0, 1, 2, 3}  # ok, failed, bad input, unreachable (errors.ExitCode)
PUBLIC_SAMPLE = "wamid.HBgMOTE5NzQwNzc2NTA1FQIAEhggMDI1QjVEMzZGQzE2RDI3QzY2MjU2MTgwQjQ3RDM2NDYA"
TINY_SCENARIO = """\
name: tiny
description: Two users tap once, at once.
seed: 1
business: {name: Fuzz Shoes}
template:
  name: fuzz
  body: "Hi"
  buttons: [{text: Shop now, payload: SHOP_NOW}]
cast: {countries: {IN: 2}}
steps: [{name: only, choices: {Shop now: 1}, spread: 0s}]
"""

# Commands left out, and why: `tui` (and bare `wasim`) open the full-screen UI. `demo` runs
# only with --headless, `receive` and `api` with their wait-forever loops cut short (see
# _bounded_receive).
EXCLUDED = {("tui",)}
# Options not fuzzed, and why: an empty or wildcard --host would listen on every interface.
NOT_FUZZED = {("receive", "--host")}
# Writing into a FIFO waits for a reader, as it does for any program, and reading /dev/full
# never ends: FIFOs go only to options that read, /dev/full only to options that write.
WRITTEN = {"--report", "--history"}
READS_ITS_HISTORY = {("history",), ("export",), ("replay",)}


def _is_dir(value: str) -> bool:
    try:
        return Path(value).is_dir()
    except (OSError, ValueError):
        return False


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


COMMANDS = {path: command for path, command in _commands(cli) if path not in EXCLUDED}


@pytest.fixture(scope="module")
def dead_url() -> Iterator[str]:
    """A loopback URL where connections are refused: the port is bound and never listened on."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}/webhook"


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory, dead_url: str) -> dict[str, str]:
    """Files the commands read: a history with one event, a tiny scenario, a FIFO, a folder."""
    root = tmp_path_factory.mktemp("fuzz")
    history = root / "history.jsonl"
    result = CliRunner().invoke(cli, ["fire", "--url", dead_url, "--seed", "1",
                                      "--history", str(history)])
    assert result.exit_code == 3, result.output
    event = result.stdout.split()[1]
    (root / "tiny.yaml").write_text(TINY_SCENARIO.replace("\nsteps", f"\ntarget: {{url: "
                                                          f"'{dead_url}'}}\nsteps"))
    (root / "folder").mkdir()
    os.mkfifo(root / "fifo")
    return {"root": str(root), "history": str(history), "event": event,
            "scenario": str(root / "tiny.yaml"), "fifo": str(root / "fifo"),
            "folder": str(root / "folder")}


def base_args(path: tuple[str, ...], place: dict[str, str], dead_url: str) -> list[str]:
    """Arguments that make each command run offline and finish quickly on its own."""
    offline = ["--url", dead_url, "--no-history"]
    return {
        ("decode",): [PUBLIC_SAMPLE],
        ("demo",): [place["scenario"], "--headless", "--no-history"],
        ("export",): [place["event"], "--history", place["history"]],
        ("fire",): offline,
        ("history",): ["--history", place["history"]],
        ("import",): [place["history"], "--out", "fuzzed.yaml"],  # a history is a capture
        ("load",): ["--url", dead_url, "--count", "1", "--concurrency", "1"],
        ("new",): ["fuzzed", "--force"],
        ("receive",): ["--port", "0"],
        ("api",): ["--port", "0"],
        ("replay",): ["--last", "1", "--history", place["history"], *offline],
        # --fast, and no waiting for the dead port, so a run ends as soon as it is refused.
        ("run",): [place["scenario"], "--fast", "--wait-timeout", "0", *offline],
        ("scenarios", "show"): ["summer-sale"],
        ("validate",): ["-"],
    }.get(path, [])


def _surrogates(raw: bytes) -> str:
    """Bytes that are not UTF-8, as Python hands them over in argv (surrogateescape)."""
    return raw.decode("utf-8", "surrogateescape")


# No value here is a valid large count or a long wait (say --count 99999 or --backoff 999):
# those are slow by request, and every run must end within WATCHDOG seconds.
FIXED = ["", " ", "nan", "NaN", "inf", "-inf", "Infinity", "-1", "0", "1", "1e309", "1e30",
         "99999999999999999999", "9" * 5000, "x" * 100_000, "\x00", "a\x00b", "\n\r\t\x1b[2J",
         "\u202e\u200b",
         _surrogates(b"\xff\xfe\xc3("), "\u00b2", "http://127.0.0.1:99999/",
         "http://127.0.0.1:-1/", "299-200", "2xx,", "..", "/", "-", "--help", "a:=[[[",
         "a:=" + "[" * 5000, "a:=" + "9" * 5000, "99999-01-01", "{{ 7 * 7 }}", "%s%n%x",
         "n" * 300, "/nonexistent/dir/file"]
SWEEP = ["nan", "9" * 5000, "a\x00b", ""]
# Random text without letters, so it can never name a module (--app imports what it names),
# and without digits, so it never makes a valid large count or a long wait.
NOISE = st.text(alphabet="\x00\x01\x1b\x7f\n\r\t -:./[]{}=,\u00e9\u202e\ud800", max_size=24)
RAW = st.binary(max_size=16).map(_surrogates)


def hostile_values(place: dict[str, str]) -> st.SearchStrategy[str]:
    """Empty, not-a-number, huge, control characters, not UTF-8, and awkward paths."""
    paths = [place["folder"], place["fifo"], "/dev/null", "/dev/full", place["history"]]
    return st.one_of(st.sampled_from(FIXED + paths), NOISE, RAW)


def _fuzzable(path: tuple[str, ...], command: click.Command) -> list[click.Parameter]:
    return [p for p in command.params
            if not (isinstance(p, click.Option) and (p.hidden or "--help" in p.opts
                                                    or "--version" in p.opts))
            and (path[-1], _flag(p)) not in NOT_FUZZED]


def _flag(param: click.Parameter) -> str:
    return max(param.opts, key=len)


def _argv(path: tuple[str, ...], command: click.Command, base: list[str],
          changes: list[tuple[click.Parameter, str]]) -> list[str] | None:
    """The command line: the base, with each fuzzed option added (or argument replaced)."""
    args = list(base)
    for param, value in changes:
        writes = _flag(param) in WRITTEN and path not in READS_ITS_HISTORY
        if (value.endswith("fifo") and writes) or (value == "/dev/full" and not writes):
            return None
        if isinstance(param, click.Argument):
            # Arguments come first in base_args, in the command's order; replace that one.
            index = [p for p in command.params if isinstance(p, click.Argument)].index(param)
            if index < len(args) and not args[index].startswith("-"):
                args[index] = value
            else:
                args.insert(index, value)
        elif isinstance(param, click.Option) and param.is_flag:
            args.append(_flag(param))
        else:
            if _flag(param) == "--history" and "--no-history" in args:
                args.remove("--no-history")  # so the fuzzed history is used at all
            args += [_flag(param), value]
    return [*path, *args]


@contextlib.contextmanager
def _feeding(fifo: str, payload: bytes) -> Iterator[None]:
    """Whoever opens the FIFO to read gets `payload` and then the end of the file."""
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: nobody reading yet
                    raise
                time.sleep(0.005)
                continue
            os.set_blocking(fd, True)
            with contextlib.suppress(BrokenPipeError):
                os.write(fd, payload)  # smaller than a pipe buffer: never blocks
            os.close(fd)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@contextlib.contextmanager
def _bounded_receive(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`receive` waits for Ctrl+C in hour-long sleeps: make the first of them a Ctrl+C."""
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if seconds >= 3600:
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    yield


WATCHDOG = 60  # seconds; a run takes well under one, so only a hang comes near this


class Hung(BaseException):
    """Raised into a command that ran past the watchdog (BaseException: nothing catches it)."""


@contextlib.contextmanager
def _watchdog(argv: list[str]) -> Iterator[None]:
    """Turn a hang into a failure that names the command line, instead of a stuck suite."""
    def expire(signum: int, frame: Any) -> None:
        raise Hung(f"still running after {WATCHDOG} s: {[a[:40] for a in argv]}")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(WATCHDOG)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check(result: Any, argv: list[str]) -> None:
    """The promises: a documented exit code, never a traceback, one line for bad input."""
    shown = [a if len(a) < 60 else a[:57] + "..." for a in argv]
    crashed = result.exception if not isinstance(result.exception, SystemExit) else None
    assert crashed is None, f"{shown}: {type(crashed).__name__}: {str(crashed)[:300]}"
    assert result.exit_code in EXIT_CODES, (shown, result.exit_code, result.stderr[-500:])
    output = result.stdout + result.stderr
    assert "Traceback" not in output, (shown, output[-2000:])
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) <= 1, (shown, result.stderr[-2000:])


# Slower commands (a scenario run or a demo per example) get fewer examples, so the module
# stays well under a minute on a busy machine.
EXAMPLES: dict[tuple[str, ...], int] = {("demo",): 10, ("run",): 20, ("load",): 20}


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_hostile_option_values_end_in_a_documented_exit_code_and_no_traceback(
        path: tuple[str, ...], place: dict[str, str], dead_url: str,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    command = COMMANDS[path]
    params = _fuzzable(path, command)
    if not params:
        pytest.skip(f"{' '.join(path)} has no options")
    base = base_args(path, place, dead_url)
    cwd = tmp_path_factory.mktemp("cwd")  # `new`, `load` and default histories write here
    change = st.tuples(st.sampled_from(params), hostile_values(place))

    def attempt(changes: list[tuple[click.Parameter, str]]) -> None:
        argv = _argv(path, command, base, changes)
        if argv is None:
            return
        with contextlib.ExitStack() as stack, pytest.MonkeyPatch.context() as monkeypatch:
            stack.enter_context(_feeding(place["fifo"], b"[" * 10_000))
            if path in (("receive",), ("api",)):
                stack.enter_context(_bounded_receive(monkeypatch))
            monkeypatch.chdir(cwd)
            for name in [n for n in os.environ if n.startswith("WASIM_")]:
                monkeypatch.delenv(name)
            with _watchdog(argv):
                result = CliRunner().invoke(cli, argv, input=b'{"a": [1, 2]}\n')
        check(result, argv)

    # First every option once with each of the nastiest values, so none is left to chance...
    for param in params:
        for value in SWEEP:
            attempt([(param, value)])

    # ...then hypothesis mixes one or two options with values from the whole hostile set.
    @settings(max_examples=EXAMPLES.get(path, 30), deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
              database=None)
    @given(changes=st.lists(change, min_size=1, max_size=2))
    def fuzz(changes: list[tuple[click.Parameter, str]]) -> None:
        attempt(changes)

    fuzz()


def test_every_command_is_fuzzed_or_excluded_with_a_reason() -> None:
    every = {path for path, _ in _commands(cli)}
    assert every == set(COMMANDS) | EXCLUDED
    assert {("fire",), ("run",), ("render",), ("validate",), ("load",)} <= set(COMMANDS)


def test_the_checks_catch_a_traceback_and_a_two_line_error() -> None:
    @click.command()
    def broken() -> None:
        raise RuntimeError("boom")

    crashed = CliRunner().invoke(broken, [])
    with pytest.raises(AssertionError, match="RuntimeError"):
        check(crashed, ["broken"])

    @click.command()
    def chatty() -> None:
        click.echo("line one\nline two", err=True)
        raise SystemExit(2)

    with pytest.raises(AssertionError):
        check(CliRunner().invoke(chatty, []), ["chatty"])


def test_the_dead_url_refuses_connections(dead_url: str) -> None:
    port = int(dead_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port),
                                                                           timeout=5):
        pass


def test_hostile_values_reach_the_commands_as_given(place: dict[str, str]) -> None:
    argv = _argv(("fire",), COMMANDS[("fire",)], ["--url", "u", "--no-history"],
                 [(next(p for p in COMMANDS[("fire",)].params if _flag(p) == "--history"),
                   place["folder"])])
    assert argv == ["fire", "--url", "u", "--history", place["folder"]]
    assert Path(place["folder"]).is_dir()

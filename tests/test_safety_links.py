"""A cloned project full of links against every file wasim writes.

A repository can hold `.wasim -> ../elsewhere`, a `history.jsonl` that links to a shell
start-up file, or a `scenarios` folder that points outside; wasim must never write through
any of them (simulator.safefiles). Each case checks the one-line error that names the link,
that the file the link points to is untouched, and that nothing was sent.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.errors import WasimError
from simulator.history import HistoryWriter, read_history
from simulator.receiver import Receiver
from simulator.safefiles import open_to_write, system_folder, write_file

STARTUP = "# a shell start-up file\n"


def one_line_error(result: Any) -> str:
    """The single stderr line of a command that failed as bad input (exit 2)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0]).removeprefix("wasim: error: ")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cloned project (the current folder) beside a folder it must never write into."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / ".bashrc").write_text(STARTUP)
    root = tmp_path / "clone"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def scenario(root: Path, url: str, button: str = "Shop now") -> Path:
    path = root / "shared.yaml"
    path.write_text("name: shared\nseed: 3\n"
                    f"target:\n  url: {url}\n"
                    "template:\n  name: t\n  body: Hi\n"
                    f"  buttons:\n    - {{text: {json.dumps(button)}, payload: P}}\n"
                    "cast:\n  countries: {IN: 1}\n"
                    f"steps:\n  - name: wave\n    choices: {{{json.dumps(button)}: 100}}\n")
    return path


def untouched(project: Path) -> None:
    elsewhere = project.parent / "elsewhere"
    assert (elsewhere / ".bashrc").read_text() == STARTUP
    assert sorted(p.name for p in elsewhere.iterdir()) == [".bashrc"]


# --- the history -------------------------------------------------------------------------


def test_fire_never_appends_through_a_history_link(project: Path, receiver: Receiver,
                                                   runner: CliRunner) -> None:
    os.symlink("../elsewhere/.bashrc", "link.jsonl")
    result = runner.invoke(cli, ["fire", "--url", receiver.url, "--history", "link.jsonl"])
    line = one_line_error(result)
    assert line.startswith("link.jsonl: refusing to write the history through a link "
                           "(it points to ../elsewhere/.bashrc)")
    untouched(project)
    assert receiver.arrivals == []  # stopped before anything was sent


def test_run_never_writes_into_a_wasim_folder_that_is_a_link(project: Path, receiver: Receiver,
                                                              runner: CliRunner) -> None:
    os.symlink("../elsewhere", ".wasim")  # the default history is .wasim/history.jsonl
    result = runner.invoke(cli, ["run", str(scenario(project, receiver.url)), "--fast"])
    assert one_line_error(result).startswith(".wasim: refusing to write the history through "
                                             "a link (it points to ../elsewhere)")
    untouched(project)
    assert receiver.arrivals == []


@pytest.mark.parametrize("layout", ["dangling", "folder-link-deep", "link-to-link",
                                    "absolute-inside", "file-is-link-in-real-folder"])
def test_no_layout_of_links_is_written_through(project: Path, receiver: Receiver,
                                               runner: CliRunner, layout: str) -> None:
    elsewhere = project.parent / "elsewhere"
    if layout == "dangling":  # the target does not exist yet: it must not be created
        os.symlink("../elsewhere/new-file", "h.jsonl")
        history, link = "h.jsonl", "h.jsonl"
    elif layout == "folder-link-deep":  # a link in a parent folder, two levels up
        os.makedirs("a")
        os.symlink("../../elsewhere", "a/b")
        history, link = "a/b/c/h.jsonl", "a/b"
    elif layout == "link-to-link":
        os.symlink("../elsewhere/.bashrc", "first")
        os.symlink("first", "h.jsonl")
        history, link = "h.jsonl", "h.jsonl"
    elif layout == "absolute-inside":  # an absolute path whose folder inside the project links
        os.symlink(str(elsewhere), "logs")
        history, link = str(project / "logs" / "h.jsonl"), str(project / "logs")
    else:
        os.makedirs("real")
        os.symlink(str(elsewhere / ".bashrc"), "real/h.jsonl")
        history, link = "real/h.jsonl", "real/h.jsonl"
    result = runner.invoke(cli, ["fire", "--url", receiver.url, "--history", history])
    assert one_line_error(result).startswith(f"{link}: refusing to write the history through")
    untouched(project)
    assert not (project.parent / "elsewhere" / "c").exists()
    assert receiver.arrivals == []


def test_a_hard_link_and_real_folders_are_written(project: Path, receiver: Receiver,
                                                  runner: CliRunner) -> None:
    # A hard link is the same file under another name, not a redirection: it is allowed.
    os.makedirs("real/deeper")
    Path("real/deeper/h.jsonl").write_text("")
    os.link("real/deeper/h.jsonl", "hard.jsonl")
    result = runner.invoke(cli, ["fire", "--url", receiver.url, "--history", "hard.jsonl"])
    assert result.exit_code == 0, result.output
    assert len(read_history(Path("real/deeper/h.jsonl")).attempts) == 1
    # New folders are made (without links), as before.
    result = runner.invoke(cli, ["fire", "--url", receiver.url, "--history", "new/dir/h.jsonl"])
    assert result.exit_code == 0, result.output
    assert len(read_history(Path("new/dir/h.jsonl")).attempts) == 1


def test_the_tui_check_refuses_a_history_folder_link(project: Path) -> None:
    os.symlink("../elsewhere", ".wasim")
    with pytest.raises(WasimError, match="refusing to write the history through a link"):
        HistoryWriter(Path(".wasim/history.jsonl")).check()
    os.symlink("../elsewhere/.bashrc", "h.jsonl")
    with pytest.raises(WasimError, match="refusing to write the history through a link"):
        HistoryWriter(Path("h.jsonl")).check()
    untouched(project)


def test_a_link_made_after_the_check_is_still_refused_when_appending(project: Path) -> None:
    # The check and the open are two moments; the open itself never follows a link.
    writer = HistoryWriter(Path("h.jsonl"))
    writer.check()
    os.symlink("../elsewhere/.bashrc", "h.jsonl")
    with pytest.raises(WasimError, match="through a link"):
        writer.open()
    untouched(project)


def test_scenario_text_lands_in_the_history_as_json_data_only(project: Path, receiver: Receiver,
                                                             runner: CliRunner) -> None:
    # Shell syntax in a button title is data: one JSON line, the text escaped inside a string.
    button = '$(touch X)`id`"\n;rm'
    result = runner.invoke(cli, ["run", str(scenario(project, receiver.url, button)), "--fast",
                                 "--history", "h.jsonl"])
    assert result.exit_code == 0, result.output
    raw = Path("h.jsonl").read_bytes()
    assert raw.count(b"\n") == 1 and raw.endswith(b"\n")  # no line break of its own
    record = json.loads(raw)
    assert record["button"] == button
    assert '"$(touch X)`id`\\"\\n;rm"' in raw.decode()
    assert not Path("X").exists()


# --- reports and scenarios -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["report.xml", "report.json"])
def test_run_reports_are_never_written_through_a_link(project: Path, receiver: Receiver,
                                                      runner: CliRunner, name: str) -> None:
    os.symlink("../elsewhere/.bashrc", name)
    result = runner.invoke(cli, ["run", str(scenario(project, receiver.url)), "--fast",
                                 "--no-history", "--report", name])
    line = result.stderr.strip().splitlines()[-1]
    assert f"{name}: refusing to write the report through a link" in line
    assert "Traceback" not in result.output and result.exit_code == 2
    untouched(project)


def test_a_report_folder_link_is_refused(project: Path, receiver: Receiver,
                                         runner: CliRunner) -> None:
    os.symlink("../elsewhere", "out")
    for command in (["run", str(scenario(project, receiver.url)), "--fast", "--no-history"],
                    ["load", "--url", receiver.url, "-n", "1"]):
        result = runner.invoke(cli, [*command, "--report", "out/r.json"])
        assert "out: refusing to write the report through a link" in result.stderr
        assert result.exit_code == 2 and "Traceback" not in result.output
    untouched(project)


@pytest.mark.parametrize("force", [False, True])
def test_new_never_writes_a_scenario_through_a_link(project: Path, runner: CliRunner,
                                                    force: bool) -> None:
    os.symlink("../elsewhere", "scenarios")
    extra = ["--force"] if force else []
    assert one_line_error(runner.invoke(cli, ["new", "promo", *extra])).startswith(
        "scenarios: refusing to write the scenario through a link")
    os.remove("scenarios")
    os.makedirs("scenarios")
    os.symlink("../../elsewhere/.bashrc", "scenarios/promo.yaml")
    assert one_line_error(runner.invoke(cli, ["new", "promo", *extra])).startswith(
        "scenarios/promo.yaml: refusing to write the scenario through a link")
    os.symlink("../../elsewhere/fresh.yaml", "scenarios/dangling.yaml")
    assert one_line_error(runner.invoke(cli, ["new", "dangling", *extra])).startswith(
        "scenarios/dangling.yaml: refusing to write the scenario through a link")
    untouched(project)


def test_new_still_refuses_to_overwrite_and_force_overwrites(project: Path,
                                                             runner: CliRunner) -> None:
    assert runner.invoke(cli, ["new", "promo"]).exit_code == 0
    Path("scenarios/promo.yaml").write_text("mine")
    assert "the file exists" in one_line_error(runner.invoke(cli, ["new", "promo"]))
    assert Path("scenarios/promo.yaml").read_text() == "mine"
    assert runner.invoke(cli, ["new", "promo", "--force"]).exit_code == 0
    assert Path("scenarios/promo.yaml").read_text().startswith("#")


# --- the helper itself ---------------------------------------------------------------------


def test_the_helper_refuses_fifos_and_keeps_modes(project: Path) -> None:
    os.mkfifo("pipe")
    with pytest.raises(OSError, match=r"not a regular file|No such device"):
        open_to_write(Path("pipe"), "the report")
    write_file(Path("a/b.json"), b"{}", "the report")
    fd = open_to_write(Path("h.jsonl"), "the history", append=True, mode=0o600)
    os.close(fd)
    assert os.stat("h.jsonl").st_mode & 0o077 == 0
    write_file(Path("a/b.json"), b"[]", "the report")  # truncated, not appended
    assert Path("a/b.json").read_bytes() == b"[]"


def _stat(mode: int, uid: int) -> os.stat_result:
    return os.stat_result((stat.S_IFDIR | mode, 1, 1, 1, uid, 0, 0, 0, 0, 0))


def test_only_links_in_folders_only_root_can_change_are_the_systems() -> None:
    assert system_folder(_stat(0o755, 0), euid=501)  # macOS's / holding tmp -> private/tmp
    assert not system_folder(_stat(0o755, 0), euid=0)  # as root, a clone's links are root's
    assert not system_folder(_stat(0o1777, 0), euid=501)  # /tmp itself: anyone plants links
    assert not system_folder(_stat(0o775, 0), euid=501)
    assert not system_folder(_stat(0o755, 501), euid=501)  # the user's own folder


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs a folder owned by root")
def test_a_system_folder_link_is_followed_for_a_user_and_nothing_else(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "system"  # owned by root (the test runs as root), 0o755
    system.mkdir(mode=0o755)
    (tmp_path / "real").mkdir()
    os.symlink(str(tmp_path / "real"), system / "tmp")
    path = system / "tmp" / "h.jsonl"
    monkeypatch.chdir(tmp_path / "real")
    monkeypatch.setattr(os, "geteuid", lambda: 501)  # as a user, the link is the system's
    os.close(open_to_write(path, "the history", append=True))
    HistoryWriter(path).check()
    assert (tmp_path / "real" / "h.jsonl").exists()
    os.symlink(str(tmp_path / "real" / "h.jsonl"), system / "file-link.jsonl")
    with pytest.raises(WasimError, match="through a link"):  # a file link: never
        open_to_write(system / "file-link.jsonl", "the history", append=True)
    system.chmod(0o775)  # someone else could have planted it
    with pytest.raises(WasimError, match="through a link"):
        open_to_write(path, "the history", append=True)
    with pytest.raises(WasimError, match="through a link"):
        HistoryWriter(path).check()


@pytest.mark.parametrize("layout", ["folder", "report"])
def test_import_never_writes_into_a_folder_link(project: Path, receiver: Receiver,
                                                runner: CliRunner, layout: str) -> None:
    # A wasim history is a capture `wasim import` reads.
    assert runner.invoke(cli, ["fire", "--url", receiver.url, "--history",
                               "h.jsonl"]).exit_code == 0
    os.symlink("../elsewhere", "out")
    args = ["import", "h.jsonl", "--out", "out/x.yaml"] if layout == "folder" \
        else ["import", "h.jsonl", "--out", "x.yaml", "--report", "out/report.md"]
    assert one_line_error(runner.invoke(cli, args)).startswith(
        "out: refusing to write the imported files through a link")
    untouched(project)
    assert not Path("x.yaml").exists()  # every file or none

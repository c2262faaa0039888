"""Docs that cannot drift: every `seatmon ...` command line shown in README.md,
docs/ and deploy/ names subcommands that exist, its `--help` runs, and every
option it names is one that command accepts."""

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seatmon.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "deploy").rglob("*"))]
# A command starts the line or the shell step: after environment settings,
# `sudo`, or a path to the program (.venv/bin/seatmon, ExecStart=/opt/...).
SEATMON = re.compile(r"^\s*(?:\$\s+)?(?:[A-Z_]+=\S+\s+)*(?:sudo\s+)?(?:ExecStart=)?(?:\S*/)?seatmon(?=\s+[a-z-])")
OPTION = re.compile(r"--[a-z][a-z0-9-]*")


def command_lines() -> list[tuple[str, str]]:
    """(where, the command from `seatmon` on) for every command shown: in
    code blocks, inline code and service files."""
    found = []
    for path in SOURCES:
        if not path.is_file() or path.suffix not in (".md", ".service", ".toml", ".conf", ""):
            continue
        text = path.read_text()
        pieces = []
        if path.suffix == ".md":
            for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.S):
                for line in block.splitlines():
                    if pieces and re.match(r"\s+[\[-]", line) and "seatmon" in pieces[-1]:
                        pieces[-1] += " " + line.strip()  # a usage line continued below
                    else:
                        pieces.append(line)
            outside = re.sub(r"```.*?```", "", text, flags=re.S)
            pieces += re.findall(r"`([^`\n]*seatmon [^`\n]*)`", outside)
        else:
            pieces += text.splitlines()
        for number, piece in enumerate(pieces):
            for part in re.split(r"&&|\|\||;|\|(?=\s)", piece.split(" # ")[0].split("\t#")[0]):
                m = SEATMON.search(part)
                if m and not re.search(r"^\s*\S*seatmon(\s+[a-z-]+)*:", part):  # not a message it prints
                    found.append((f"{path.relative_to(ROOT)}: {piece.strip()}", part[m.end() - len("seatmon"):].strip()))
    return found


def _subparsers(parser: argparse.ArgumentParser) -> dict:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def resolve(line: str) -> tuple[list[list[str]], list[tuple[str, list[str]]]]:
    """The subcommand paths the line names (`a|b` alternatives give several)
    and, per option, the path it appears under; raises ValueError for a
    subcommand that does not exist."""
    paths = [[]]
    options = []
    parser = build_parser()
    words = line.split()[1:]
    for word in words:
        word = word.strip("[]()'\"`,")
        if word.startswith("--"):
            m = OPTION.match(word)
            if m:
                options.append((m.group(0), list(paths[0])))
            continue
        choices = _subparsers(parser)
        if not choices or not re.fullmatch(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*", word):
            continue
        names = word.split("|")
        unknown = [n for n in names if n not in choices]
        if unknown:
            if len(paths[0]) == 0 or all(not c.startswith(unknown[0][:2]) for c in choices):
                # a plain word after a command that takes a positional (e.g. a file name)
                if any(isinstance(a, argparse._SubParsersAction) and a.required for a in parser._actions):
                    raise ValueError(f"no subcommand {unknown[0]!r} under 'seatmon {' '.join(paths[0])}'")
                continue
            raise ValueError(f"no subcommand {unknown[0]!r} under 'seatmon {' '.join(paths[0])}'")
        paths = [p + [n] for p in paths for n in names]
        parser = choices[names[0]]
    return paths, options


LINES = command_lines()


def test_the_docs_show_commands():
    assert len(LINES) > 20  # the extraction works


_helps: dict[tuple[str, ...], str] = {}


def help_text(path: list[str]) -> str:
    key = tuple(path)
    if key not in _helps:
        res = subprocess.run([sys.executable, "-m", "seatmon.cli", *path, "--help"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, f"seatmon {' '.join(path)} --help: {res.stderr}"
        _helps[key] = res.stdout
    return _helps[key]


def problems(line: str) -> list[str]:
    try:
        paths, options = resolve(line)
    except ValueError as exc:
        return [str(exc)]
    for path in paths:
        help_text(path)  # runs
    out = []
    for option, under in options:
        # An option belongs to the command it follows or to one of its parents.
        helps = [help_text(under[:i]) for i in range(len(under), -1, -1)]
        helps += [help_text(p) for p in paths]
        if not any(re.search(re.escape(option) + r"(?![a-z0-9-])", h) for h in helps):
            out.append(f"'seatmon {' '.join(under)}' has no option {option}")
    return out


@pytest.mark.parametrize("where,line", LINES, ids=[w[:90] for w, _ in LINES])
def test_command_shown_in_the_docs_exists(where, line):
    assert problems(line) == [], where


def test_the_check_catches_drift():
    assert problems("seatmon unit simulate --units 2 --dran") == ["'seatmon unit simulate' has no option --dran"]
    assert problems("seatmon report answer --from 2026-11-01") == ["no subcommand 'answer' under 'seatmon report'"]
    assert problems("seatmon collect --config FILE quarantine list --limit 5") == []


def test_the_readme_opens_with_the_two_commands_then_three_short_lines():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```[^\n]*\n(.*?)```", section, re.S)
    assert len(block) == 1 and len(block[0].strip().splitlines()) == 2, section
    after = [line for line in section.split("```")[-1].splitlines() if line.strip()]
    assert len(after) <= 3 and all(len(line) <= 200 for line in after), after


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for heading in re.findall(r"^#+\s+(.*)$", path.read_text(), re.M):
        out.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return out


def test_every_pointer_to_a_docs_section_finds_it():
    # e.g. `seatmon broker config` sent technicians to a section that did not exist
    pointers = []
    for path in [*ROOT.glob("*/*.py"), *ROOT.glob("*/*/*.py"), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        if ".venv" in path.parts or "node_modules" in path.parts:
            continue
        base = path.parent if path.suffix == ".md" else ROOT
        for target, anchor in re.findall(r"([\w./-]*\.md)#([a-z0-9-]+)", path.read_text()):
            pointers.append((path.relative_to(ROOT), target, anchor, base / target))
    assert pointers
    broken = [(str(where), f"{target}#{anchor}") for where, target, anchor, doc in pointers
              if not doc.exists() or anchor not in _anchors(doc)]
    assert broken == []


def test_the_technicians_rehearsal_runs_as_written(tmp_path):
    """docs/technicians.md's rehearsal, line by line in a shell, from a folder
    holding the example site (its broker port moved to a free one): a
    virtual board provisioned over its serial port, the unit on a TLS broker."""
    import os
    import shutil
    import signal

    from rig.servers import free_port

    section = (ROOT / "docs/technicians.md").read_text().split("## Rehearsing without hardware", 1)[1]
    steps = re.search(r"```sh\n(.*?)```", section, re.S).group(1).splitlines()
    port = free_port()
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy/site.example.toml").write_text(
        (ROOT / "deploy/site.example.toml").read_text().replace("port = 8883", f"port = {port}"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env.pop("SEATMON_SITE", None)
    broker, last = None, None
    try:
        for step in steps:
            if "in a terminal of its own" in step:
                broker = subprocess.Popen(["bash", "-c", "exec " + step.split(" #")[0]], cwd=tmp_path, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                deadline = time.monotonic() + 20
                while not _listening(port):
                    assert broker.poll() is None and time.monotonic() < deadline, broker.communicate()[0]
                    time.sleep(0.1)
                continue
            last = subprocess.run(["bash", "-c", step], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=240)
            out = last.stdout + last.stderr
            assert last.returncode == 0 and "Traceback" not in out, f"{step}\n{out}"
            if "flash provision" in step:
                assert "SEATMON SELFTEST PASS" in out, out
            if "rehearse status" in step:
                assert f"u-0001 on the broker at 127.0.0.1:{port} (TLS): online" in out, out
        assert "stopped" in last.stdout
    finally:
        subprocess.run(["bash", "-c", f"{sys.executable} -m seatmon.cli rehearse stop lab/u-0001.img"],
                       cwd=tmp_path, env=env, capture_output=True, timeout=60)
        if broker is not None:
            broker.send_signal(signal.SIGTERM)
            broker.wait(10)
    shutil.rmtree(tmp_path / "lab", ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0

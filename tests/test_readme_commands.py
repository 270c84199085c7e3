"""Every command the README and docs/*.md show still parses.

For each shell line in a fenced code block of README.md and docs/*.md that runs ``recommender ...``,
``python -m MODULE ...``, ``python path/to/script.py ...``, ``make TARGET`` (with ``.venv/bin/``,
environment assignments, ``nohup`` / ``nice -n N``, ``torchrun ... -m`` and ``accelerate launch ...
-m`` in front allowed):

- ``recommender <sub> [<action>]`` and ``python -m <module> [<sub>]``: ``<same> --help`` exits 0 (so the
  subcommand exists) and names every ``--flag`` / ``-k`` the line uses;
- ``make X``: the Makefile has a target ``X``;
- every argument that is a path into the repository (``finetune/...``, ``bench/...``) exists.

Help texts are fetched once per command (``--help`` loads no model: each takes well under a second).
Python blocks are checked too: every ``from recommender... import a, b`` names something that exists.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"", "bash", "sh", "shell", "console"}
REPO_DIRS = ("bench/", "finetune/", "prompts/", "recommender/", "tests/", "tools/", "ui/", "docs/")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
FENCE = re.compile(r"^```([\w+-]*)\s*$")
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass(frozen=True)
class Command:
    page: str
    line: str  # as written (continuations joined)
    kind: str  # "cli", "module", "script" or "make"
    program: tuple[str, ...]  # what runs before the arguments: ("recommender",), ("-m", mod), (path,)
    args: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.page}: {' '.join(self.program + self.args)}"


def code_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(language, lines) of every fenced code block."""
    blocks, lang, lines = [], None, []
    for raw in text.splitlines():
        fence = FENCE.match(raw.strip())
        if fence and lang is None:
            lang, lines = fence.group(1).lower(), []
        elif raw.strip() == "```" and lang is not None:
            blocks.append((lang, lines))
            lang = None
        elif lang is not None:
            lines.append(raw)
    return blocks


def shell_lines(lines: list[str]) -> list[str]:
    """Logical lines: backslash continuations joined, blank lines dropped."""
    out, pending = [], ""
    for raw in lines:
        text = raw.rstrip()
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        joined = (pending + text).strip()
        pending = ""
        if joined:
            out.append(joined)
    return out


def strip_prefixes(tokens: list[str]) -> list[str]:
    """Drop environment assignments, nohup and nice -n N in front of a command."""
    while tokens:
        if ASSIGNMENT.match(tokens[0]) or tokens[0] == "nohup":
            tokens = tokens[1:]
        elif tokens[0] == "nice":
            tokens = tokens[3:] if len(tokens) > 2 and tokens[1] == "-n" else tokens[1:]
        else:
            break
    return tokens


def after_module(tokens: list[str]) -> list[str] | None:
    """For ``torchrun ... -m mod args`` / ``accelerate launch ... -m mod args``: ["-m", mod, args...]."""
    if "-m" in tokens:
        i = tokens.index("-m")
        return tokens[i:]
    return None


def parse_command(page: str, line: str) -> Command | None:
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return None
    tokens = strip_prefixes(tokens)
    if not tokens:
        return None
    head = tokens[0].removeprefix(".venv/bin/")
    if head in ("torchrun", "accelerate"):
        rest = after_module(tokens)
        if rest is None:
            return None
        tokens, head = ["python", *rest], "python"
    if head == "recommender":
        return Command(page, line, "cli", ("recommender",), tuple(tokens[1:]))
    if head in ("python", "python3"):
        if len(tokens) > 2 and tokens[1] == "-m":
            if tokens[2] == "recommender.cli":
                return Command(page, line, "cli", ("recommender",), tuple(tokens[3:]))
            return Command(page, line, "module", ("-m", tokens[2]), tuple(tokens[3:]))
        if len(tokens) > 1 and tokens[1].endswith(".py"):
            return Command(page, line, "script", (tokens[1],), tuple(tokens[2:]))
        return None
    if head == "make":
        return Command(page, line, "make", ("make",), tuple(tokens[1:]))
    return None


def shown_commands() -> list[Command]:
    commands = []
    for page in PAGES:
        name = str(page.relative_to(ROOT))
        for lang, lines in code_blocks(page.read_text(encoding="utf-8")):
            if lang not in SHELL_LANGS:
                continue
            for line in shell_lines(lines):
                command = parse_command(name, line)
                if command is not None:
                    commands.append(command)
    return commands


def python_imports() -> list[tuple[str, str, list[str]]]:
    """(page, module, names) of every ``from recommender... import ...`` in a python code block."""
    found = []
    for page in PAGES:
        name = str(page.relative_to(ROOT))
        for lang, lines in code_blocks(page.read_text(encoding="utf-8")):
            if lang != "python":
                continue
            for line in lines:
                match = re.match(r"^\s*from\s+(recommender[\w.]*)\s+import\s+(.+)$", line)
                if match:
                    names = [n.strip().split(" as ")[0] for n in match.group(2).strip("() ").split(",") if n.strip()]
                    found.append((name, match.group(1), names))
    return found


COMMANDS = shown_commands()


def subcommand_path(command: Command) -> tuple[str, ...]:
    """The leading positional words that name a subcommand (``feedback export``): for the CLI, the
    words before the first option; for a module, its first word when it is one of the module's
    subcommands (``bench.feedback_retune data``)."""
    words = []
    for token in command.args:
        if token.startswith("-"):
            break
        words.append(token)
    if command.kind == "cli":
        return tuple(words[:2]) if words[:1] == ["feedback"] else tuple(words[:1])
    return ()


@functools.cache
def help_text(program: tuple[str, ...], path: tuple[str, ...]) -> tuple[int, str]:
    """``<program> <path> --help``: exit status and text (cached per command). The ``recommender`` CLI's
    parser is built in this process (one import instead of a process per subcommand; the console
    script itself is run once by ``test_console_script_help``); modules and scripts run as processes."""
    if program == ("recommender",):
        from recommender.cli import make_parser

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                make_parser().parse_args([*path, "--help"])
                status = 0
            except SystemExit as stop:
                status = stop.code if isinstance(stop.code, int) else 1
        return status, out.getvalue() + err.getvalue()
    argv = [sys.executable, *program, *path, "--help"]
    done = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def test_console_script_help():
    """The installed ``recommender`` script answers --help without loading a model."""
    script = Path(sys.executable).parent / "recommender"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "recommender.cli"]
    done = subprocess.run([*argv, "--help"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "evaluate" in done.stdout


def flags_of(args: tuple[str, ...]) -> list[str]:
    """Every option the line passes (``--set`` values and ``--flag=value`` cut at the ``=``)."""
    flags = []
    for token in args:
        if re.fullmatch(r"--[A-Za-z][\w-]*(=.*)?", token) or re.fullmatch(r"-[A-Za-z]", token):
            flags.append(token.split("=", 1)[0])
    return flags


def repo_paths(args: tuple[str, ...]) -> list[str]:
    """Arguments that name a file or folder inside the repository (not placeholders such as ...)."""
    paths = []
    for token in args:
        value = token.split("=", 1)[-1]
        if value.startswith(REPO_DIRS) and not any(c in value for c in "*<>{}") and "..." not in value:
            paths.append(value)
    return paths


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.MULTILINE)}


def test_the_pages_show_commands():
    kinds = {command.kind for command in COMMANDS}
    assert {"cli", "module", "make"} <= kinds, kinds
    assert any(c.page == "README.md" and c.kind == "make" for c in COMMANDS)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.kind != "make"], ids=str)
def test_command_exists_and_takes_its_flags(command: Command):
    path = subcommand_path(command)
    status, text = help_text(command.program, path)
    assert status == 0, f"{command}\n`{' '.join((*command.program, *path))} --help` failed:\n{text[-2000:]}"
    missing = [flag for flag in flags_of(command.args) if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)]
    assert not missing, f"{command}\nnot in its --help: {', '.join(missing)}"


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.kind == "make"], ids=str)
def test_make_target_exists(command: Command):
    targets = makefile_targets()
    wanted = [arg for arg in command.args if not arg.startswith("-") and "=" not in arg]
    missing = [target for target in wanted if target not in targets]
    assert not missing, f"{command}\nno such Makefile target: {', '.join(missing)}"


@pytest.mark.parametrize("command", [c for c in COMMANDS if repo_paths(c.args) or c.kind == "script"], ids=str)
def test_paths_in_commands_exist(command: Command):
    paths = repo_paths(command.args) + (list(command.program) if command.kind == "script" else [])
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert not missing, f"{command}\nno such path in the repository: {', '.join(missing)}"


def test_paths_named_in_the_pages_exist():
    """A repository path written in backticks (`recommender/explain.py`, `bench/results/speed.md`) exists."""
    missing = []
    dirs = "|".join(re.escape(d) for d in REPO_DIRS)
    pattern = re.compile(rf"`((?:{dirs})[\w./-]*)`")
    for page in PAGES:
        for path in pattern.findall(page.read_text(encoding="utf-8")):
            if not (ROOT / path).exists():
                missing.append(f"{page.relative_to(ROOT)}: {path}")
    assert not missing, "no such path in the repository:\n" + "\n".join(missing)


def test_links_between_pages_resolve():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("page, module, names", python_imports(), ids=lambda v: v if isinstance(v, str) else None)
def test_python_imports_resolve(page: str, module: str, names: list[str]):
    loaded = importlib.import_module(module)
    missing = [name for name in names if not hasattr(loaded, name)]
    assert not missing, f"{page}: `from {module} import` names what {module} lacks: {', '.join(missing)}"


def test_python_blocks_parse():
    bad = []
    for page in PAGES:
        for lang, lines in code_blocks(page.read_text(encoding="utf-8")):
            if lang == "python":
                try:
                    ast.parse("\n".join(lines))
                except SyntaxError as error:
                    bad.append(f"{page.relative_to(ROOT)}: {error}")
    assert not bad, "\n".join(bad)


def resolve_dotted(name: str) -> bool:
    """``recommender.x.y.attr`` or ``Recommender.method`` names something that exists."""
    if name.startswith("Recommender."):
        name = "recommender.pipeline." + name
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_dotted_names_in_the_pages_exist():
    """`recommender.llm.precision`, `Recommender.influences`: each module, class and attribute named exists."""
    missing = []
    for page in PAGES:
        for name in sorted(
            set(re.findall(r"`((?:recommender|Recommender)\.[A-Za-z_][\w.]*\w)", page.read_text("utf-8")))
        ):
            if not resolve_dotted(name):
                missing.append(f"{page.relative_to(ROOT)}: {name}")
    assert not missing, "named but not found:\n" + "\n".join(missing)

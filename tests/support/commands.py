"""The commands the pages (*.md) and the module docstrings print, and whether each resolves here.

A page's commands are its code blocks' lines and its inline code that starts like a command; a
docstring's are its lines that do. A command resolves when a fresh clone can run it: `make` targets
dry-run (`make -n`), `python` scripts and modules answer `--help` (run with this interpreter, from
the repository root), `tox`/`.venv/bin/tox` name existing environments. `.venv/bin/python` never
resolves: .venv holds only tox. `npx sls` commands are checked against the framework's own command
schema where node_modules is installed (tests/package). A word in capitals (NAME, FOLDER) is a
placeholder: a `make` or `tox` command naming one is not run.
"""

import ast
import configparser
import itertools
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from harness import REPO_ROOT

COMMAND_START = re.compile(r"^(make|python|npx sls|tox|\.venv/bin/\S+) ")
_FENCE = re.compile(r"^```")
_INLINE = re.compile(r"`([^`\n]+)`")
_COMMENT = re.compile(r"\s+#.*$")
_ENV_ASSIGNMENT = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+")
_SKIPPED_PARTS = {"node_modules", "build", ".tox", ".venv", ".git", ".serverless"}
_TIMEOUT_S = 60


@dataclass(frozen=True)
class Documented:
    """A command and where it is printed (path:line)."""

    where: str
    command: str


def run(*command: str) -> subprocess.CompletedProcess:
    """`command` from the repository root, its output captured as text, bounded in time."""
    return subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
    )


def repository_files(suffix: str) -> list[Path]:
    """The files git knows (tracked, or untracked and not ignored) that end with `suffix`."""
    listed = run("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    listed.check_returncode()
    names = listed.stdout.split("\0")
    paths = {REPO_ROOT / name for name in names if name.endswith(suffix)}
    return sorted(
        p for p in paths if p.is_file() and not _SKIPPED_PARTS & set(p.relative_to(REPO_ROOT).parts)
    )


def _as_command(text: str) -> str | None:
    text = _ENV_ASSIGNMENT.sub("", _COMMENT.sub("", text.strip()))
    return text if COMMAND_START.match(text) else None


def page_commands(path: Path) -> list[Documented]:
    """The commands of a Markdown page: code block lines and inline code."""
    found, in_block = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if _FENCE.match(line.strip()):
            in_block = not in_block
            continue
        candidates = [line] if in_block else _INLINE.findall(line)
        where = f"{path.relative_to(REPO_ROOT)}:{number}"
        found += [Documented(where, command) for command in map(_as_command, candidates) if command]
    return found


def docstring_commands(path: Path) -> list[Documented]:
    """The command lines of a module's docstring."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    where = str(path.relative_to(REPO_ROOT))
    return [Documented(where, command) for command in map(_as_command, docstring.splitlines()) if command]


def documented_commands() -> list[Documented]:
    """Every command the repository's pages and module docstrings print."""
    found = [command for page in repository_files(".md") for command in page_commands(page)]
    return found + [command for module in repository_files(".py") for command in docstring_commands(module)]


def problem(command: str) -> str | None:
    """Why `command` would not run on a fresh clone, or None."""
    words = shlex.split(command)
    if words[0] == "make":
        return _make_problem(words[1:])
    if words[0] in ("tox", ".venv/bin/tox"):
        return _tox_problem(words[1:])
    if words[0] == "python":
        return _python_problem(words[1:])
    if words[:2] == ["npx", "sls"]:
        return None  # tests/package checks these against the framework's command schema
    return f"{words[0]}: .venv holds only tox (make bootstrap); run this through a make target or tox"


def _placeholder(word: str) -> bool:
    return word.isupper()


def _make_problem(arguments: list[str]) -> str | None:
    targets = [word for word in arguments if "=" not in word and not word.startswith("-")]
    if any(map(_placeholder, targets)):
        return None
    result = run("make", "-n", "--no-print-directory", *arguments)
    return None if result.returncode == 0 else f"make -n failed: {result.stderr.strip()[-300:]}"


@cache
def tox_environments() -> set[str]:
    """Every environment tox.ini defines."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPO_ROOT / "tox.ini")
    listed = {name.strip() for name in tox["tox"]["env_list"].split(",")}
    return listed | {
        section.removeprefix("testenv:") for section in tox.sections() if section.startswith("testenv:")
    }


def _tox_problem(arguments: list[str]) -> str | None:
    inner = arguments[arguments.index("--") + 1 :] if "--" in arguments else []
    own = arguments[: len(arguments) - len(inner)]
    environments = [
        env for word, names in itertools.pairwise(own) if word == "-e" for env in names.split(",")
    ]
    unknown = [name for name in environments if not _placeholder(name) and name not in tox_environments()]
    if unknown:
        return f"no tox environment {', '.join(unknown)}"
    return problem(shlex.join(inner)) if inner else None


def _python_problem(arguments: list[str]) -> str | None:
    while arguments and arguments[0].startswith("-") and arguments[0] != "-m":
        arguments = arguments[1:]  # interpreter options (python -B, -I)
    if not arguments:
        return None  # an interpreter option named in prose, not a command
    if arguments[:1] == ["-m"]:
        target = ["-m", arguments[1]]
    else:
        script = REPO_ROOT / arguments[0]
        if not script.is_file():
            return f"no script {arguments[0]}"
        target = [str(script)]
    result = run(sys.executable, *target, "--help")
    if result.returncode != 0 or "usage:" not in result.stdout:
        return (
            f"`python {' '.join(target)} --help` exited {result.returncode}: {result.stderr.strip()[-300:]}"
        )
    return None

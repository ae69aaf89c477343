"""What the pages and docstrings tell people to run works on a fresh clone, and the layout they
describe is the tree's: every command resolves, the review page's accept commands accept exactly
the names they show, the README's Layout table names every part, and the import rules hold."""

import ast
import html
import re
import shlex

import pytest

from harness import REPO_ROOT, golden
from tests.support.commands import documented_commands, problem, repository_files, run

DOCUMENTED = documented_commands()
UNIQUE = {documented.command: documented.where for documented in reversed(DOCUMENTED)}
AWKWARD_NAMES = ("png-rgb.png", "name with spaces.jpg", "ünïcödé-名前.png")


@pytest.mark.parametrize("command", sorted(UNIQUE))
def test_a_documented_command_resolves(command):
    assert problem(command) is None, f"{UNIQUE[command]}: `{command}`: {problem(command)}"


def test_the_readme_tells_the_operator_review_and_harness_commands():
    readme = {
        documented.command.split(" --")[0]
        for documented in DOCUMENTED
        if documented.where.startswith("README.md")
    }

    for command in ("python -m ops.redrive", "python -m ops.backfill", "python -m ops.uploads delete"):
        assert any(printed.startswith(command) for printed in readme), command
    assert {"make demo", "make test", "make golden-report", "make golden-accept FROM_REVIEW=1"} <= readme


def test_no_page_or_docstring_runs_python_from_the_tox_only_venv():
    assert [d for d in DOCUMENTED if d.command.startswith(".venv/bin/python")] == []
    assert problem(".venv/bin/python -m harness.golden accept").startswith(
        ".venv/bin/python: .venv holds only tox"
    )


def _recipe_names(command: str) -> list[str]:
    """The names `command` (`make golden-accept ...`) hands to harness.golden, as the shell parses them."""
    dry_run = run("bash", "-c", f"{command} -n --no-print-directory")
    dry_run.check_returncode()
    recipe = shlex.split(dry_run.stdout.strip().splitlines()[-1])
    assert recipe[recipe.index("harness.golden") + 1] == "accept", recipe
    return recipe[recipe.index("accept") + 1 :]


@pytest.mark.parametrize("names", [(), AWKWARD_NAMES[:1], AWKWARD_NAMES])
def test_the_accept_command_hands_exactly_its_names_to_the_goldens_command(names):
    assert _recipe_names(golden.accept_command(*names)) == list(names)


def test_the_review_page_prints_accept_commands_that_accept_what_it_shows(tmp_path, monkeypatch):
    monkeypatch.setenv(golden.REVIEW_DIR_ENV, str(tmp_path))
    for name in AWKWARD_NAMES:
        index = golden.record(golden.Comparison(name=name, problems=("differs",), new_bytes=b""))

    page = index.read_text(encoding="utf-8")
    every, *each = [html.unescape(code) for code in re.findall(r"<code>(.*?)</code>", page)]

    assert ".venv/bin/python" not in page
    assert every == golden.accept_command(*sorted(AWKWARD_NAMES))
    assert sorted(_recipe_names(every)) == sorted(AWKWARD_NAMES)
    assert sorted(map(_recipe_names, each)) == sorted([name] for name in AWKWARD_NAMES)


def _layout_paths() -> set[str]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Layout") : readme.index("\n## ", readme.index("## Layout") + 1)]
    first_cells = re.findall(r"^\| ([^|]+) \|", section, re.MULTILINE)
    return {path.rstrip("/") for cell in first_cells for path in re.findall(r"`([^`]+)`", cell)}


def test_the_layout_table_matches_the_tree():
    documented = _layout_paths()
    parts = {path.relative_to(REPO_ROOT).parts for path in repository_files("")}
    folders = {p[0] for p in parts if len(p) > 1 and not p[0].startswith(".")}
    folders |= {f"{p[0]}/{p[1]}" for p in parts if p[0] in ("tests", "fixtures") and len(p) > 2}

    assert sorted(path for path in documented if not (REPO_ROOT / path).exists()) == []
    covered = {
        folder
        for folder in folders
        for path in documented
        if folder == path or path.startswith(f"{folder}/") or folder.startswith(f"{path}/")
    }
    assert sorted(folders - covered) == []


def _imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return {name.split(".")[0] for name in names}


def test_nothing_outside_tests_imports_tests_and_the_operator_commands_never_import_the_harness():
    modules = {path: _imported_modules(path) for path in repository_files(".py")}
    outside_tests = [path for path in modules if path.relative_to(REPO_ROOT).parts[0] != "tests"]

    assert [str(p) for p in outside_tests if modules[p] & {"tests", "support"}] == []
    ops = [path for path in outside_tests if path.relative_to(REPO_ROOT).parts[0] == "ops"]
    assert ops, "ops/ not found"
    assert [str(p) for p in ops if modules[p] & {"harness", "bench"}] == []

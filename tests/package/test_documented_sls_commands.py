"""Every `npx sls` command the pages and docstrings print exists, with its options, in the pinned
framework (its own command schema in node_modules, which `tox -e package` installs)."""

import json
import shlex
import subprocess

import pytest

from harness import REPO_ROOT
from tests.support.commands import documented_commands
from tests.support.tiers import PACKAGE_REQUIRED, unavailable

pytestmark = pytest.mark.package

SCHEMA = REPO_ROOT / "node_modules" / "osls" / "lib" / "cli" / "commands-schema" / "aws-service.js"
_DUMP = (
    "const schema = require(process.argv[1]);"
    "const options = ([name, command]) => [name, Object.keys(command.options || {})];"
    "console.log(JSON.stringify(Object.fromEntries([...schema].map(options))));"
)
SLS_COMMANDS = {d.command: d.where for d in documented_commands() if d.command.startswith("npx sls ")}


@pytest.fixture(scope="module")
def framework_commands() -> dict[str, set[str]]:
    """{command: its options} as the installed Serverless Framework defines them."""
    if not SCHEMA.is_file():
        unavailable(
            f"{SCHEMA.relative_to(REPO_ROOT)} missing", fix="run `make package`", variable=PACKAGE_REQUIRED
        )
    dumped = subprocess.run(["node", "-e", _DUMP, str(SCHEMA)], capture_output=True, text=True, check=True)
    return {name: set(options) for name, options in json.loads(dumped.stdout).items()}


def test_the_readme_prints_sls_commands():
    assert {"npx sls deploy --stage prod", "npx sls remove --stage prod"} <= set(SLS_COMMANDS)


@pytest.mark.parametrize("command", sorted(SLS_COMMANDS))
def test_a_documented_sls_command_and_its_options_exist(command, framework_commands):
    words = shlex.split(command)[2:]
    name = " ".join(
        word for word in words[: next((i for i, w in enumerate(words) if w.startswith("-")), None)]
    )
    options = {word.removeprefix("--").split("=")[0] for word in words if word.startswith("--")}

    assert name in framework_commands, f"{SLS_COMMANDS[command]}: no `sls {name}`"
    assert options <= framework_commands[name], (
        f"{SLS_COMMANDS[command]}: `sls {name}` has no {options - framework_commands[name]}"
    )

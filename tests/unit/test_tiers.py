"""No silent empty tier: a missing Chromium or Lambda-like Python skips, or fails when required."""

import pytest

from harness import interpreters
from tests.support import tiers

SKIPPED, FAILED = pytest.skip.Exception, pytest.fail.Exception


@pytest.fixture
def nothing_required(monkeypatch):
    """No CI, no *_REQUIRED variable."""
    for name in ("CI", tiers.CHROMIUM_REQUIRED, tiers.PACKAGE_REQUIRED, tiers.CORPUS_REQUIRED):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def empty_machine(nothing_required, tmp_path):
    """Nothing on PATH, no CHROMIUM, a THUMBNAILER_LAMBDA_PYTHON that does not exist."""
    nothing_required.setenv("PATH", str(tmp_path))
    nothing_required.delenv("CHROMIUM", raising=False)
    nothing_required.setenv(interpreters.LAMBDA_PYTHON_ENV, str(tmp_path / "python3.13"))
    return nothing_required


@pytest.mark.parametrize(("value", "required"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_a_tier_is_required_by_its_variable_or_by_ci(nothing_required, value, required):
    nothing_required.setenv(tiers.CHROMIUM_REQUIRED, value)
    assert tiers.required(tiers.CHROMIUM_REQUIRED) is required

    nothing_required.setenv("CI", "true")
    assert tiers.required(tiers.CHROMIUM_REQUIRED) is True


def test_without_chromium_the_report_checks_skip_naming_the_fix(empty_machine):
    with pytest.raises(SKIPPED, match=r"no Chromium binary .*: run `make browser`"):
        tiers.chromium()


@pytest.mark.parametrize("variable", ["CI", tiers.CHROMIUM_REQUIRED])
def test_without_chromium_a_required_report_fails_naming_the_fix(empty_machine, variable):
    empty_machine.setenv(variable, "1")

    with pytest.raises(FAILED, match=f"run `make browser`.*{variable}"):
        tiers.chromium()


def test_chromium_is_found_through_the_chromium_variable(nothing_required, tmp_path):
    browser = tmp_path / "my-chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    nothing_required.setenv("CHROMIUM", str(browser))

    assert tiers.chromium() == str(browser)


def test_without_a_lambda_python_the_layer_checks_skip(empty_machine):
    with pytest.raises(SKIPPED, match=r"nothing stands in for Lambda's python3\.13"):
        tiers.lambda_python("python3.13")


@pytest.mark.parametrize("variable", ["CI", tiers.PACKAGE_REQUIRED])
def test_without_a_lambda_python_required_layer_checks_fail_naming_the_fix(empty_machine, variable):
    empty_machine.setenv(variable, "1")

    with pytest.raises(FAILED) as failed:
        tiers.lambda_python("python3.13")

    message = str(failed.value)
    assert "pyenv install" in message
    assert interpreters.LAMBDA_PYTHON_ENV in message
    assert variable in message

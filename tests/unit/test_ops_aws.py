"""ops.aws: the operator commands' one invoker, one client builder and one log format."""

import io
import json
import logging
import subprocess
import sys

import pytest

from harness import REPO_ROOT
from ops.aws import MAX_ATTEMPTS, FunctionInvoker, Invocation, clients, json_logger
from tests.unit.conftest import StubLambda


class RawLambda:
    """A Lambda client whose function error is not JSON (a crash before the runtime answered)."""

    def invoke(self, **_):
        return {"Payload": io.BytesIO(b"Task timed out after 30.00 seconds"), "FunctionError": "Unhandled"}


def test_the_invoker_reads_outcomes_and_function_errors():
    ok = StubLambda({"records": 1, "outcomes": {"created": 1}})

    assert FunctionInvoker(ok)("fn", {"Records": []}) == Invocation(True, outcomes={"created": 1})
    assert ok.events == [("fn", {"Records": []})]
    failing = StubLambda({"errorType": "RecordsFailed", "errorMessage": "x"}, "Unhandled")
    assert FunctionInvoker(failing)("fn", {}) == Invocation(False, error="RecordsFailed: x")
    assert FunctionInvoker(RawLambda())("fn", {}) == Invocation(
        False, error="Task timed out after 30.00 seconds"
    )


def test_clients_share_retries_and_a_pool_sized_for_the_concurrency():
    s3, lambda_client = clients("s3", "lambda", region="eu-west-1", concurrency=16)

    for client in (s3, lambda_client):
        assert client.meta.region_name == "eu-west-1"
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS + 1}
        assert client.meta.config.max_pool_connections == 32


def test_the_commands_log_json_lines_in_the_function_s_format(capsys):
    logger = logging.getLogger("ops.test-format")
    logger.handlers.clear()
    json_logger(logger.name).info("replayed", extra={"fields": {"message_id": "m-1"}})

    (line,) = capsys.readouterr().err.splitlines()
    assert json.loads(line) | {"time": None} == {
        "time": None,
        "level": "INFO",
        "message": "replayed",
        "message_id": "m-1",
    }


@pytest.mark.parametrize("module", ["ops.redrive", "ops.backfill", "ops.uploads", "thumbnailer.logs"])
def test_operator_commands_and_the_log_format_import_without_pillow_or_the_harness(module):
    probe = f"import sys, {module}; print(sorted(m for m in ('PIL', 'harness', 'tests') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"

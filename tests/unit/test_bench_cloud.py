"""The LocalStack part of the benchmark: invocation counting and the side-by-side trigger table."""

from bench import cloud, report
from harness.function_log import FunctionLog


class FakeLogs:
    """A CloudWatch Logs client whose one page holds the given messages."""

    def __init__(self, messages):
        self.messages = messages

    def get_paginator(self, _name):
        return self

    def paginate(self, **_window):
        return [{"events": [{"message": message} for message in self.messages]}]


def test_count_adds_invocations_and_durations_per_outcome(monkeypatch):
    monkeypatch.setattr(cloud, "LOG_SETTLE_S", 0.0)
    window = FunctionLog(
        FakeLogs(
            [
                "START RequestId: a Version: $LATEST",
                '{"outcome": "created", "duration_ms": 12.5}',
                "START RequestId: b Version: $LATEST",
                '{"outcome": "skipped_recursion", "duration_ms": 0.0}',
            ]
        ),
        "/aws/lambda/f",
    )
    measured = cloud.TriggerResult("s3", deploy_s=1.0)

    measured.count(window, uploads=1)

    assert (measured.invocations, measured.uploads) == (2, 1)
    assert measured.invocations_per_upload == 2.0
    assert measured.durations_ms == {"created": [12.5], "skipped_recursion": [0.0]}


def test_the_table_has_one_column_per_trigger():
    entries = [
        report.entry("localstack/ready", "s", 1.6, group="localstack", sample="x.jpg", label="ready"),
        *(
            report.entry(
                "localstack/invocations per upload",
                "",
                value,
                n=10,
                invocations=int(10 * value),
                group="localstack",
                sample="x.jpg",
                trigger=trigger,
                label="invocations per upload",
            )
            for trigger, value in (("s3", 2.0), ("eventbridge", 1.0))
        ),
    ]

    table = "\n".join(report._cloud_table(entries))

    assert "| measurement | trigger=s3 | trigger=eventbridge |" in table
    assert "| ready | 1.6 s | |" in table
    assert "| invocations per upload | 2.00 (20 for 10 uploads) | 1.00 (10 for 10 uploads) |" in table

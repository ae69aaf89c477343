"""Fixtures of the differential corpus test: the corpus's folder and manifest, and the report."""

import json
import logging
from collections import Counter
from pathlib import Path

import pytest

from tests.support.corpus import (
    REPORT_NAME,
    CorpusMissing,
    corpus_dir,
    load_manifest,
)
from tests.support.tiers import CORPUS_REQUIRED, unavailable

log = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def corpus_directory() -> Path:
    """Where the corpus is: build/corpus/, or $THUMBNAILER_CORPUS_DIR to use one elsewhere."""
    return corpus_dir()


@pytest.fixture(scope="session")
def corpus_manifest(corpus_directory) -> dict:
    """The corpus's manifest.json (written by `python -m harness.corpus fetch`).

    Missing, the tests skip and say to run `make corpus`; with CI or THUMBNAILER_CORPUS_REQUIRED
    set they fail instead. To test another corpus, set THUMBNAILER_CORPUS_DIR to a folder laid
    out like build/corpus/ (a manifest.json listing files relative to it): the test ids come from
    that manifest too, so override the folder, not this fixture.
    """
    try:
        return load_manifest(corpus_directory)
    except CorpusMissing as exc:
        unavailable(
            str(exc), fix="run `make corpus` (python -m harness.corpus fetch)", variable=CORPUS_REQUIRED
        )


class CorpusReport:
    """Outcome of every corpus file of the session, written to <corpus>/report.json at its end."""

    def __init__(self) -> None:
        self.files: dict[str, dict] = {}

    def record(self, path: str, outcome: dict) -> None:
        """Keep the outcome of one file (its `category` is what the counts count)."""
        self.files[path] = outcome

    def summary(self) -> dict:
        """Counts per category, rejections per reason, and the failing files by category."""
        categories = Counter(outcome["category"] for outcome in self.files.values())
        rejected = Counter(
            outcome["reason"] for outcome in self.files.values() if outcome["category"] == "rejected_by_both"
        )
        failures: dict[str, list[str]] = {}
        for path, outcome in sorted(self.files.items()):
            if outcome["failed"]:
                failures.setdefault(outcome["category"], []).append(path)
        return {
            "total": len(self.files),
            "thumbnailed_by_both": categories["thumbnailed_by_both"],
            "rejected_by_both": dict(sorted(rejected.items())),
            "ours_rejected_reference_ok": categories["ours_rejected_reference_ok"],
            "reference_rejected_ours_ok": categories["reference_rejected_ours_ok"],
            "errors": categories["error"],
            "crashes": categories["crash"],
            "size_mismatches": categories["size_mismatch"],
            "alpha_mismatches": categories["alpha_mismatch"],
            "pixel_mismatches": categories["pixel_mismatch"],
            "box_violations": categories["box_violation"],
            "output_problems": categories["bad_output"],
            "failed": sum(outcome["failed"] for outcome in self.files.values()),
            "known_differences": sum(outcome["known_difference"] for outcome in self.files.values()),
            "failures": failures,
        }


@pytest.fixture(scope="session")
def corpus_report(corpus_directory):
    """Collects each file's outcome; writes <corpus>/report.json (counts, then every file) at the end."""
    report = CorpusReport()
    yield report
    if not report.files:
        return
    summary = report.summary()
    path = corpus_directory / REPORT_NAME
    path.write_text(json.dumps({**summary, "files": dict(sorted(report.files.items()))}, indent=1) + "\n")
    counts = {key: value for key, value in summary.items() if key != "failures"}
    log.info("corpus report %s: %s", path, json.dumps(counts))

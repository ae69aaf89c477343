"""ops/backfill.py: the listing merge, bounded concurrency, dry run, summary; moto's S3."""

import io
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from harness.fixtures import image_bytes
from ops import backfill
from ops.backfill import Decision, ObjectInfo, ProgressBar, Result, Stats, backfill_event, plan, run
from tests.unit.conftest import BUCKET, StubLambda
from thumbnailer.events import parse_event

T0 = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)


def obj(key: str, seconds: int = 0) -> ObjectInfo:
    return ObjectInfo(key, T0 + timedelta(seconds=seconds), 100)


def actions(decisions) -> dict[str, str]:
    return {d.source.key: d.action for d in decisions}


def test_plan_sorts_sources_into_missing_stale_and_up_to_date():
    sources = [obj("a.jpg", 10), obj("b.jpg", 10), obj("c.jpg", 10), obj("d.jpg", 10)]
    thumbnails = [obj("thumbnails/b.jpg", 5), obj("thumbnails/c.jpg", 10), obj("thumbnails/d.jpg", 11)]

    result = actions(plan(sources, thumbnails, "thumbnails/"))

    # Equal timestamps count as fresh: S3 has one-second resolution and the function writes
    # within the second of the upload.
    assert result == {"a.jpg": "missing", "b.jpg": "stale", "c.jpg": "up_to_date", "d.jpg": "up_to_date"}


def test_plan_never_treats_thumbnails_or_folder_markers_as_sources():
    # Same bucket, no prefix: the source listing contains the thumbnails themselves.
    sources = [obj("a.jpg"), obj("photos/"), obj("thumbnails/a.jpg"), obj("thumbnails/zzz.jpg"), obj("z.jpg")]
    thumbnails = [obj("thumbnails/a.jpg"), obj("thumbnails/zzz.jpg")]
    orphans: list[str] = []

    result = actions(plan(sources, thumbnails, "thumbnails/", orphans))

    assert result == {
        "a.jpg": "up_to_date",
        "photos/": "folder_marker",
        "thumbnails/a.jpg": "thumbnail",
        "thumbnails/zzz.jpg": "thumbnail",
        "z.jpg": "missing",
    }
    assert orphans == ["thumbnails/zzz.jpg"]


def test_plan_merges_in_s3_key_order_with_awkward_keys():
    # S3 lists in UTF-8 byte order; str comparison by code point gives the same order.
    keys = sorted(["a b.jpg", "a+b.jpg", "a.jpg", "ünïcödé.png", "名前.png", "Z.png", "a/b.png"])
    assert keys == sorted(keys, key=lambda k: k.encode())
    sources = [obj(k, 5) for k in keys]
    thumbnails = [obj(f"thumbnails/{k}", 5) for k in keys if k not in ("a+b.jpg", "名前.png")]
    orphans: list[str] = []

    result = actions(plan(sources, thumbnails, "thumbnails/", orphans))

    assert {k for k, a in result.items() if a == "missing"} == {"a+b.jpg", "名前.png"}
    assert {k for k, a in result.items() if a == "up_to_date"} == set(keys) - {"a+b.jpg", "名前.png"}
    assert orphans == []


@pytest.mark.parametrize("key", ["plain.jpg", "name with spaces+plus.jpg", "ünïcödé-名前.png", "a/b/c%d.gif"])
def test_backfill_event_round_trips_through_the_function_parser(key):
    (ref,) = parse_event(backfill_event("uploads", key, 123)).objects

    assert ref.key == key
    assert ref.bucket == "uploads"
    assert ref.is_creation
    assert ref.event_name == "ObjectCreated:Backfill"
    assert ref.size == 123


def test_run_keeps_at_most_concurrency_objects_in_flight():
    concurrency = 3
    everyone_in = threading.Barrier(concurrency, timeout=10)
    lock = threading.Lock()
    active = peak = 0

    def process(bucket, source):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        everyone_in.wait()  # only returns once `concurrency` calls run at the same time
        with lock:
            active -= 1
        return Result("created")

    decisions = [Decision("missing", obj(f"{i:02d}.jpg")) for i in range(4 * concurrency)]
    stats = run(decisions, process, BUCKET, concurrency=concurrency)

    assert peak == concurrency
    assert stats.done == 4 * concurrency
    assert stats.outcomes == {"created": 4 * concurrency}


def test_run_counts_failures_and_keeps_going():
    def process(bucket, source):
        if "bad" in source.key:
            raise RuntimeError("boom")
        return Result("failed", "throttled") if "slow" in source.key else Result("created")

    decisions = [Decision("missing", obj(k)) for k in ("a.jpg", "bad.jpg", "slow.jpg", "z.jpg")]
    stats = run(decisions, process, BUCKET, concurrency=2)

    assert stats.outcomes == {"created": 2, "failed": 2}
    assert sorted(f["key"] for f in stats.failures) == ["bad.jpg", "slow.jpg"]
    assert "RuntimeError: boom" in [f["error"] for f in stats.failures]


def test_progress_bar_shows_done_planned_and_outcomes():
    stream = io.StringIO()
    decisions = [Decision("missing", obj("a.jpg")), Decision("up_to_date", obj("b.jpg"))]

    run(decisions, lambda b, s: Result("created"), BUCKET, progress=ProgressBar(stream, enabled=True))

    last = stream.getvalue().rstrip("\n").split("\r")[-1]
    assert last.startswith("[" + "#" * ProgressBar.WIDTH + "]")
    assert "1/1 listed 2 objects" in last
    assert "created 1" in last
    assert stream.getvalue().endswith("\n")


def put(s3, key, fixture="jpeg-baseline.jpg"):
    s3.put_object(Bucket=BUCKET, Key=key, Body=image_bytes(fixture))


def keys(s3):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


@pytest.fixture
def legacy_bucket(s3):
    """A bucket that held images before the function was attached: some thumbnails, some not."""
    put(s3, "photos/a.jpg")
    put(s3, "photos/b.png", "png-rgba.png")
    put(s3, "thumbnails/photos/b.png", "png-rgba.png")  # written after its source: up to date
    put(s3, "photos/broken.png", "corrupt-garbage.png")
    put(s3, "photos/", "empty.jpg")  # a console folder marker
    put(s3, "thumbnails/photos/deleted-long-ago.jpg")  # orphan
    put(s3, "zz name+plus.gif", "gif-static.gif")
    return s3


def cli(capsys, *args) -> tuple[int, dict, list[dict]]:
    code = backfill.main(["--bucket", BUCKET, "--local", "--page-size", "2", *args])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return code, lines[-1], lines[:-1]


def test_backfill_creates_what_is_missing_then_has_nothing_left_to_do(legacy_bucket, capsys):
    code, summary, _ = cli(capsys)

    assert code == 0
    assert summary["sources"] == 4
    assert summary["missing"] == 3
    assert summary["up_to_date"] == 1
    # The listing goes on while the work is done (page size 2): photos/a.jpg's new thumbnail is
    # listed too when its page comes after the thumbnail was written.
    assert summary["skipped_thumbnails"] in {2, 3}
    assert summary["skipped_folder_markers"] == 1
    assert summary["outcomes"] == {"created": 2, "rejected": 1}
    assert summary["orphaned_thumbnails"] == 1
    assert "thumbnails/photos/a.jpg" in keys(legacy_bucket)
    assert "thumbnails/zz name+plus.gif" in keys(legacy_bucket)

    code, again, _ = cli(capsys)

    assert code == 0
    # The corrupt file has no thumbnail and is tried again on every run (rejected each time).
    assert (again["missing"], again["up_to_date"], again["processed"]) == (1, 3, 1)


def test_dry_run_lists_the_work_and_writes_nothing(legacy_bucket, capsys):
    before = keys(legacy_bucket)

    code, summary, items = cli(capsys, "--dry-run")

    assert code == 0
    assert keys(legacy_bucket) == before
    assert summary["dry_run"] is True
    assert summary["processed"] == 0
    assert items == [
        {"key": "photos/a.jpg", "action": "missing"},
        {"key": "photos/broken.png", "action": "missing"},
        {"key": "zz name+plus.gif", "action": "missing"},
    ]


def test_prefix_limits_the_backfill(legacy_bucket, capsys):
    code, summary, _ = cli(capsys, "--prefix", "zz")

    assert code == 0
    assert (summary["sources"], summary["missing"], summary["outcomes"]) == (1, 1, {"created": 1})
    assert "thumbnails/photos/a.jpg" not in keys(legacy_bucket)


def test_listing_is_paginated(legacy_bucket):
    requests = []
    legacy_bucket.meta.events.register("before-call.s3.ListObjectsV2", lambda **kwargs: requests.append(1))

    listed = [item.key for item in backfill.list_objects(legacy_bucket, BUCKET, "", page_size=2)]

    assert listed == keys(legacy_bucket)
    assert len(requests) >= 4  # 7 objects, at most 2 per page


def test_lambda_processor_reports_the_outcome_or_the_error():
    source = obj("a b.jpg")
    ok = StubLambda({"records": 1, "outcomes": {"created": 1}})
    failing = StubLambda({"errorType": "RecordsFailed", "errorMessage": "SlowDown"}, "Unhandled")

    assert backfill.LambdaProcessor(ok, "fn")(BUCKET, source) == Result("created")
    assert backfill.LambdaProcessor(failing, "fn")(BUCKET, source) == Result(
        "failed", "RecordsFailed: SlowDown"
    )
    function, event = ok.events[0]
    assert function == "fn"
    assert event["Records"][0]["s3"]["object"]["key"] == "a+b.jpg"


def test_thumbnail_prefix_comes_from_the_function():
    stub = StubLambda({}, environment={"THUMBNAIL_PREFIX": "small/", "THUMBNAIL_BUCKET": ""})

    assert backfill.function_settings(stub, "fn") == ("small/", None)


def test_stats_planned_grows_with_the_listing():
    stats = Stats()
    stats.decisions.update(["missing", "stale", "up_to_date"])
    assert stats.planned == 2


def test_local_mode_writes_where_the_prefix_override_says(legacy_bucket, capsys):
    code, summary, _ = cli(capsys, "--thumbnail-prefix", "small/", "--prefix", "photos/")

    assert code == 0
    # Under small/ nothing exists yet, so even photos/b.png is missing there.
    assert (summary["missing"], summary["outcomes"]) == (3, {"created": 2, "rejected": 1})
    assert [k for k in keys(legacy_bucket) if k.startswith("small/")] == [
        "small/photos/a.jpg",
        "small/photos/b.png",
    ]

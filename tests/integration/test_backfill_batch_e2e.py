"""A backfill job's path end to end: the manifest `ops.backfill --engine s3-batch` writes, run
against the deployed function with schema-2.0 task events, as S3 Batch Operations would (LocalStack
has no Batch Operations: harness.batch_job stands in for its LambdaInvoke)."""

from urllib.parse import unquote

import pytest

from harness.batch_job import run_job
from harness.fixtures import image_bytes
from harness.thumbnails import thumbnail_key
from ops import batch

pytestmark = pytest.mark.localstack


def test_a_job_makes_what_is_missing_leaves_what_is_current_and_reports_the_rest(
    s3, aws_client, deployed_stack, key_prefix, wait_for_thumbnail, request
):
    bucket, work_bucket = deployed_stack.bucket, deployed_stack.outputs["BatchWorkBucket"]
    lost, kept, junk, gone = (
        key_prefix + name for name in ("lost, thumb ü+.jpg", "kept.png", "junk.jpg", "gone.jpg")
    )
    for key, fixture in ((lost, "jpeg-baseline.jpg"), (kept, "png-rgb.png"), (junk, "not-an-image.jpg")):
        s3.put_object(Bucket=bucket, Key=key, Body=image_bytes(fixture))
    wait_for_thumbnail(lost)
    wait_for_thumbnail(kept)
    s3.delete_object(Bucket=bucket, Key=thumbnail_key(lost))  # lost in an outage
    manifest_key = f"{batch.MANIFEST_PREFIX}{key_prefix.rstrip('/')}.csv"
    request.addfinalizer(lambda: s3.delete_object(Bucket=work_bucket, Key=manifest_key))
    manifest = batch.write_manifest(s3, bucket, [lost, kept, junk, gone], work_bucket, manifest_key)

    report = run_job(s3, aws_client("lambda"), deployed_stack.function_name, work_bucket, manifest.key)

    results = {unquote(row.key): (row.code, row.text.split(":")[0]) for row in report}
    assert results == {
        lost: ("Succeeded", "created"),
        kept: ("Succeeded", "up_to_date"),
        junk: ("PermanentFailure", "rejected"),
        gone: ("PermanentFailure", "skipped_missing"),
    }
    junk_reason = next(row.text for row in report if unquote(row.key) == junk)
    assert junk_reason.startswith("rejected: not_an_image: ")
    assert s3.head_object(Bucket=bucket, Key=thumbnail_key(lost))["ContentType"] == "image/jpeg"

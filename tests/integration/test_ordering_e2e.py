"""Races on the deployed stack: uploads, overwrites and deletes of the same keys, as fast as S3 takes them.

Every sequence below runs on several keys at once, one thread per key, with no pause between
its steps, so the function's invocations for a key overlap and finish in any order. Once every
event has been handled (one log line per event and key), each key must hold the thumbnail of
its final source and only that: none where the last step deleted it or wrote a file that is
not an image, else a thumbnail naming the final source's ETag.
"""

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.fixtures import image_bytes
from harness.function_log import FunctionLog
from harness.waiting import wait_until

pytestmark = pytest.mark.localstack

PHOTO_1 = image_bytes("jpeg-baseline.jpg")
PHOTO_2 = image_bytes("png-rgb.png")
JUNK = image_bytes("not-an-image.jpg")
DELETE = None
# name: the steps on one key (bytes to upload, or DELETE), and whether a thumbnail must remain
SEQUENCES = {
    "upload-delete": ((PHOTO_1, DELETE), False),
    "upload-delete-reupload": ((PHOTO_1, DELETE, PHOTO_2), True),
    "upload-overwrite": ((PHOTO_1, PHOTO_2), True),
    "upload-overwrite-with-junk": ((PHOTO_1, JUNK), False),
    "upload-delete-reupload-delete": ((PHOTO_1, DELETE, PHOTO_2, DELETE), False),
}
KEYS_PER_SEQUENCE = 4


def test_racing_uploads_and_deletes_leave_exactly_the_thumbnail_of_each_final_source(
    s3, deployed_stack, aws_client, key_prefix, record_property
):
    bucket = deployed_stack.bucket
    window = FunctionLog.from_now(aws_client("logs"), deployed_stack.log_group)
    plans = {
        f"{key_prefix}{name}-{index}-{uuid.uuid4().hex[:6]}.img": steps
        for name, (steps, _) in SEQUENCES.items()
        for index in range(KEYS_PER_SEQUENCE)
    }

    def play(key: str) -> None:
        for step in plans[key]:
            if step is DELETE:
                s3.delete_object(Bucket=bucket, Key=key)
            else:
                s3.put_object(Bucket=bucket, Key=key, Body=step)

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(play, plans))

    def handled() -> bool:
        lines = window.read().for_keys(set(plans))
        done = Counter(line["key"] for line in lines if line.get("outcome") not in (None, "failed"))
        return all(done[key] >= len(steps) for key, steps in plans.items())

    wait_until(handled, deadline_s=240, what="one handled event per step")
    settled_s = time.monotonic() - started

    wrong = []
    for key in plans:
        sequence = key[len(key_prefix) :].rsplit("-", 2)[0]
        must_have_thumbnail = SEQUENCES[sequence][1]
        thumbnail = _head(s3, bucket, f"thumbnails/{key}")
        if not must_have_thumbnail:
            if thumbnail is not None:
                wrong.append(f"{key}: a thumbnail is left")
            continue
        source = _head(s3, bucket, key)
        if thumbnail is None:
            wrong.append(f"{key}: no thumbnail")
        elif thumbnail["Metadata"].get("source-etag") != source["ETag"].strip('"'):
            wrong.append(f"{key}: the thumbnail is of another version")
    assert wrong == []

    lines = window.for_keys(set(plans))
    requests = Counter(line["s3_requests"] for line in lines if line.get("outcome") == "created")
    record_property("settled_s", round(settled_s, 1))
    record_property("s3_requests_per_created_record", dict(requests))
    # Mostly GetObject + PutObject + HeadObject; more when a source changed during the work.
    assert requests.most_common(1)[0][0] == 3


def _head(s3, bucket: str, key: str) -> dict | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return None

"""ops/uploads.py: the one command that deletes uploads says what it will delete and asks first."""

import json

import pytest

from ops import uploads
from tests.unit.conftest import BUCKET


def fill(s3, count: int) -> None:
    for index in range(count):
        s3.put_object(Bucket=BUCKET, Key=f"photos/{index}.jpg", Body=b"x" * 10)


def test_nothing_is_deleted_unless_the_bucket_s_name_is_typed(s3, capsys):
    fill(s3, 3)

    status = uploads.main(["delete", "--bucket", BUCKET], ask=lambda prompt: "yes")

    assert status == 1
    assert len(s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == 3


def test_typing_the_name_deletes_every_version_and_then_the_bucket(s3, capsys):
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    fill(s3, 3)
    s3.put_object(Bucket=BUCKET, Key="photos/0.jpg", Body=b"second version")
    s3.delete_object(Bucket=BUCKET, Key="photos/1.jpg")  # a delete marker
    prompts = []

    status = uploads.main(["delete", "--bucket", BUCKET], ask=lambda prompt: prompts.append(prompt) or BUCKET)

    assert status == 0
    assert BUCKET in prompts[0]
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"bucket": BUCKET, "deleted_objects": 5, "bucket_deleted": True}
    assert BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_yes_and_keep_bucket_empty_it_without_asking(s3, capsys):
    fill(s3, 1200)  # more than one DeleteObjects batch

    assert uploads.main(["delete", "--bucket", BUCKET, "--yes", "--keep-bucket"], ask=pytest.fail) == 0

    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


@pytest.mark.parametrize(("created", "refused"), [("true", False), ("false", True)])
def test_a_stage_s_bucket_is_found_from_its_stack_but_an_attached_one_is_not_emptied(created, refused):
    class Stacks:
        def describe_stacks(self, StackName):
            outputs = [
                {"OutputKey": "UploadBucketName", "OutputValue": BUCKET},
                {"OutputKey": "UploadBucketCreatedByStack", "OutputValue": created},
            ]
            assert StackName == "thumbnailer-prod"
            return {"Stacks": [{"Outputs": outputs}]}

    if refused:
        with pytest.raises(SystemExit, match="not one its stack created"):
            uploads.stack_bucket(Stacks(), "prod")
    else:
        assert uploads.stack_bucket(Stacks(), "prod") == BUCKET

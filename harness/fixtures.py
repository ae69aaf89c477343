"""The committed inputs in fixtures/: which images must get a thumbnail (and which never), the events."""

import copy
import io
import json
from functools import cache
from urllib.parse import quote, quote_plus

from harness import REPO_ROOT

IMAGES_DIR = REPO_ROOT / "fixtures" / "images"
EVENTS_DIR = REPO_ROOT / "fixtures" / "events"

# Files that must produce a thumbnail, and the output format each one gets.
VALID_IMAGES = {
    "jpeg-baseline.jpg": "JPEG",
    "jpeg-progressive.jpg": "JPEG",
    "jpeg-cmyk.jpg": "JPEG",
    "jpeg-grayscale.jpg": "JPEG",
    "jpeg-exif-orientation-3.jpg": "JPEG",
    "jpeg-exif-orientation-6.jpg": "JPEG",
    "jpeg-exif-orientation-8.jpg": "JPEG",
    "png-rgb.png": "PNG",
    "png-rgba.png": "PNG",
    "png-palette-transparent.png": "PNG",
    "png-16bit-gray.png": "PNG",
    "png-16bit-rgb.png": "PNG",
    "png-grayscale-alpha.png": "PNG",
    "gif-static.gif": "GIF",
    "gif-animated.gif": "GIF",
    "webp-lossy.webp": "WEBP",
    "webp-alpha.webp": "WEBP",
    "bmp-rgb.bmp": "PNG",
    "tiff-rgb.tiff": "PNG",
    "tiff-rgba.tiff": "PNG",
    "tiff-exif-orientation-6.tiff": "PNG",
    "png-rgb-colour-key.png": "PNG",
    "heic-hopper.heif": "JPEG",
    "heic-rgba-29x100.heif": "PNG",
    "heic-grey-exif-xmp-iptc.heic": "JPEG",
    "avif-orientation-5.avif": "JPEG",
    "avif-transparent.avif": "PNG",
    "tiny-1x1.png": "PNG",
    "small-100x50.jpg": "JPEG",
    "exact-128x128.png": "PNG",
    "wide-2000x10.png": "PNG",
    "tall-10x2000.png": "PNG",
    "name with spaces.jpg": "JPEG",
    "ünïcödé-名前.png": "PNG",
}

# Files that can never produce a thumbnail, and the `reason` their log line carries.
INVALID_IMAGES = {
    "corrupt-truncated.jpg": "corrupt",
    "corrupt-garbage.png": "corrupt",
    "empty.jpg": "empty",
    "not-an-image.jpg": "not_an_image",
    "decompression-bomb.png": "too_many_pixels",
    "unsupported-format.pcx": "unsupported_format",
    "jpeg-scan-bomb.jpg": "too_complex",
    "png-too-wide.png": "too_many_pixels",
}


@cache
def _image_bytes(name: str) -> bytes:
    return (IMAGES_DIR / name).read_bytes()


def image_bytes(name: str) -> bytes:
    """The bytes of fixtures/images/<name> (read once per run)."""
    return _image_bytes(name)


def display_size(name: str) -> tuple[int, int]:
    """The size a viewer shows fixtures/images/<name> at (EXIF orientation applied by Pillow)."""
    from PIL import Image, ImageOps

    from thumbnailer import formats

    data = image_bytes(name)
    formats.register_decoder(formats.accepted_format(data))  # TIFF, AVIF and HEIF load lazily
    with Image.open(io.BytesIO(data)) as image:
        return ImageOps.exif_transpose(image).size


def load_event(name: str) -> dict:
    """A fresh copy of fixtures/events/<name>, safe to modify."""
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


def s3_put_event(bucket: str, *keys: str) -> dict:
    """An ObjectCreated:Put notification for `keys`, shaped like fixtures/events/put-single.json.

    Keys are URL-encoded the way S3 encodes them in notifications (spaces as '+').
    """
    template = load_event("put-single.json")["Records"][0]
    records = []
    for key in keys:
        record = copy.deepcopy(template)
        record["s3"]["bucket"]["name"] = bucket
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
        record["s3"]["object"]["key"] = quote_plus(key, safe="/")
        records.append(record)
    return {"Records": records}


def eventbridge_event(bucket: str, key: str, detail_type: str = "Object Created") -> dict:
    """An S3 event as EventBridge delivers it ("Object Created" or "Object Deleted"), shaped like
    fixtures/events/eventbridge-object-created.json; the key as it is (not URL-encoded)."""
    event = load_event("eventbridge-object-created.json")
    event["detail-type"] = detail_type
    event["detail"]["bucket"]["name"], event["detail"]["object"]["key"] = bucket, key
    event["detail"]["reason"] = "PutObject" if detail_type == "Object Created" else "DeleteObject"
    return event


def batch_operations_event(bucket: str, *keys: str) -> dict:
    """An S3 Batch Operations invocation (schema 2.0) with one task per key, task ids task-0, task-1...

    Shaped like fixtures/events/batch-operations-2.0.json; keys URL-encoded as in a CSV manifest.
    """
    event = load_event("batch-operations-2.0.json")
    template = event["tasks"][0]
    event["tasks"] = [
        {**template, "taskId": f"task-{index}", "s3Bucket": bucket, "s3Key": quote(key, safe="/")}
        for index, key in enumerate(keys)
    ]
    return event

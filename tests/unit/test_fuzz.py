"""Fuzzing: every fixture image, mutated by hypothesis, through the core.

Four mutation kinds for each file in fixtures/images: bit flips (biased to the header),
truncation, header edits (bytes overwritten, inserted or deleted in the first 128 bytes), and
huge or degenerate declared sizes written into each format's own size fields (PNG IHDR with or
without a valid CRC, GIF screen and frame, BMP, JPEG SOFn, WebP VP8/VP8L/VP8X, TIFF tags, PCX).

The contract checked on every case: `make_thumbnail` (what the handler calls) returns a Thumbnail
that decodes, fits the box and says its own format, or raises a PermanentError with a documented
reason (anything else would be retried by Lambda although the bytes can never work); within
DEADLINE per case, and the process never grows past RSS_LIMIT_MB.

Examples per (file, kind): THUMBNAILER_FUZZ_EXAMPLES (default 50, i.e. 33 x 4 x 50 = 6600 cases).
Measurements go to build/fuzz/report.json: outcomes per kind, slowest cases, peak RSS.
"""

import functools
import io
import json
import os
import resource
import struct
import time
import traceback
import zlib
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import thumbnailer.core
from harness.fixtures import IMAGES_DIR
from tests.support.generated import FAST_PATH_SOURCES
from thumbnailer.core import CONTENT_TYPES, Thumbnail, make_thumbnail
from thumbnailer.errors import PermanentError
from thumbnailer.settings import Settings

FIXTURES = sorted(path.name for path in IMAGES_DIR.iterdir() if path.name != "INDEX.md")
EXAMPLES = int(os.environ.get("THUMBNAILER_FUZZ_EXAMPLES", "50"))
# Generous on purpose: the slowest legitimate case (a GIF declaring a 50-megapixel canvas) takes
# about 0.5 s here; the deadline catches hangs and quadratic blow-ups, not slow machines.
DEADLINE = timedelta(seconds=5)
# Peak RSS of the whole pytest process. Decoding a canvas just under MAX_SOURCE_PIXELS legitimately
# needs a few hundred MB (measured peak in the report); a missing pixel guard would need gigabytes.
RSS_LIMIT_MB = 1024
SETTINGS = Settings()  # the deployed defaults: 128x128, MAX_SOURCE_PIXELS 50,000,000
DOCUMENTED_REASONS = {
    "empty",
    "not_an_image",
    "unsupported_format",
    "too_many_pixels",
    "too_complex",
    "corrupt",
}
REPORT = Path(__file__).resolve().parents[2] / "build" / "fuzz" / "report.json"
HEADER_BYTES = 128
CORE_FILE = thumbnailer.core.__file__

pytestmark = [
    # Pillow warns about the damage it tolerates (corrupt EXIF, TIFF tags past the end): expected.
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=DEADLINE,
    database=None,  # no .hypothesis/ in the tree; a failure prints its reproduction blob
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Measurements:
    """Everything the fuzz run observed, written to REPORT when the module is done."""

    def __init__(self):
        self.outcomes: dict[str, Counter] = defaultdict(Counter)
        self.slowest: list[tuple[float, str, str, int]] = []
        self.cases = 0
        self.seconds = 0.0
        self.rss_start_mb = _rss_mb()
        self.peak_raisers: list[tuple[float, str, str, int]] = []  # cases that raised the RSS peak

    def record(
        self, kind: str, name: str, outcome: str, elapsed: float, size: int, rss_before: float
    ) -> None:
        self.cases += 1
        if _rss_mb() - rss_before >= 10:
            self.peak_raisers.append((round(_rss_mb()), kind, name, size))
        self.seconds += elapsed
        self.outcomes[kind][outcome] += 1
        self.slowest = sorted([*self.slowest, (elapsed, kind, name, size)], reverse=True)[:10]

    def as_dict(self) -> dict:
        return {
            "cases": self.cases,
            "examples_per_file_and_kind": EXAMPLES,
            "seconds_in_core": round(self.seconds, 2),
            "mean_ms": round(1000 * self.seconds / max(self.cases, 1), 2),
            "slowest": [
                {"seconds": round(s, 3), "kind": k, "fixture": n, "bytes": b} for s, k, n, b in self.slowest
            ],
            "rss_mb": {"at_start": round(self.rss_start_mb), "peak": round(_rss_mb()), "limit": RSS_LIMIT_MB},
            "cases_that_raised_the_rss_peak_by_10_mb_or_more": [
                {"peak_mb": m, "kind": k, "fixture": n, "bytes": b} for m, k, n, b in self.peak_raisers
            ],
            "outcomes": {kind: dict(counter) for kind, counter in sorted(self.outcomes.items())},
        }


MEASURED = Measurements()


@pytest.fixture(scope="module", autouse=True)
def fuzz_report():
    """Write build/fuzz/report.json after the module's cases ran."""
    yield MEASURED
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(MEASURED.as_dict(), indent=2) + "\n")


def check(kind: str, name: str, data: bytes) -> None:
    """Run one mutated input through the core (and render, if needed); assert the contract."""
    rss_before = _rss_mb()
    started = time.perf_counter()
    try:
        result: Thumbnail | BaseException = make_thumbnail(data)
    except Exception as exc:  # sorted out below
        result = exc
    elapsed = time.perf_counter() - started
    if isinstance(result, Thumbnail):
        _assert_valid(result)
        outcome = "thumbnail"
    elif isinstance(result, PermanentError):
        assert result.reason in DOCUMENTED_REASONS, f"undocumented reason {result.reason!r}: {result}"
        outcome = result.reason
    elif isinstance(result, MemoryError):
        pytest.fail(f"MemoryError for {kind} of {name} ({len(data)} bytes)")
    else:  # anything else would be retried by Lambda although the bytes can never work
        pytest.fail(f"{type(result).__name__} from {_core_line(result)} for {kind} of {name}: {result}")
    MEASURED.record(kind, name, outcome, elapsed, len(data), rss_before)
    assert _rss_mb() < RSS_LIMIT_MB, f"peak RSS {_rss_mb():.0f} MB after {kind} of {name}"


def _core_line(exc: BaseException) -> str:
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == CORE_FILE]
    return f"core.py:{lines[-1]}" if lines else "outside core.py"


def _assert_valid(thumbnail: Thumbnail) -> None:
    assert 1 <= thumbnail.width <= SETTINGS.max_width
    assert 1 <= thumbnail.height <= SETTINGS.max_height
    assert thumbnail.content_type == CONTENT_TYPES[thumbnail.format]
    with Image.open(io.BytesIO(thumbnail.data)) as decoded:
        decoded.load()
        assert decoded.format == thumbnail.format
        assert decoded.size == (thumbnail.width, thumbnail.height)


# --- mutations ------------------------------------------------------------------------------------


@st.composite
def bit_flips(draw, data: bytes) -> bytes:
    """1-16 flipped bits; half of them aimed at the first HEADER_BYTES."""
    if not data:
        return data
    mutated = bytearray(data)
    header = min(len(data), HEADER_BYTES)
    positions = st.one_of(st.integers(0, header - 1), st.integers(0, len(data) - 1))
    for position, bit in draw(st.lists(st.tuples(positions, st.integers(0, 7)), min_size=1, max_size=16)):
        mutated[position] ^= 1 << bit
    return bytes(mutated)


@st.composite
def truncations(draw, data: bytes) -> bytes:
    """A prefix of the file (possibly empty), biased to short prefixes where headers end."""
    cut = draw(st.one_of(st.integers(0, min(len(data), 2 * HEADER_BYTES)), st.integers(0, len(data))))
    return data[:cut]


@st.composite
def header_edits(draw, data: bytes) -> bytes:
    """1-4 edits in the first HEADER_BYTES: overwrite, insert or delete 1-8 bytes."""
    mutated = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        offset = draw(st.integers(0, min(len(mutated), HEADER_BYTES)))
        chunk = draw(st.binary(min_size=1, max_size=8))
        operation = draw(st.sampled_from(["overwrite", "insert", "delete"]))
        if operation == "overwrite":
            mutated[offset : offset + len(chunk)] = chunk
        elif operation == "insert":
            mutated[offset:offset] = chunk
        else:
            del mutated[offset : offset + len(chunk)]
    return bytes(mutated)


# A size field: (offset, width in bytes, byte order). Values written are clipped to the width.
SIZE_FIELDS = tuple[tuple[int, int, str], ...]

# Values that matter: empty, tiny, the pixel limit's neighbourhood, 16/24/32-bit extremes.
INTERESTING_SIZES = [0, 1, 2, 7071, 7072, 50_000, 0x7FFF, 0xFFFF, 0xFFFFFF, 0x7FFFFFFF, 0xFFFFFFFF]


def size_fields(data: bytes) -> SIZE_FIELDS:
    """Where each format stores its declared width and height (best effort, first frame)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return ((16, 4, "big"), (20, 4, "big"))
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 13:
        return ((6, 2, "little"), (8, 2, "little"), *_gif_frame_fields(data))
    if data.startswith(b"BM") and len(data) >= 26:
        return ((18, 4, "little"), (22, 4, "little"))
    if data.startswith(b"\xff\xd8"):
        return _jpeg_sof_fields(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return {
            b"VP8 ": ((26, 2, "little"), (28, 2, "little")),
            b"VP8L": ((21, 4, "little"),),
            b"VP8X": ((24, 3, "little"), (27, 3, "little")),
        }.get(data[12:16], ())
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_fields(data)
    if data[4:8] == b"ftyp" and (ispe := data.find(b"ispe")) > 0 and ispe + 16 <= len(data):
        return ((ispe + 8, 4, "big"), (ispe + 12, 4, "big"))  # HEIF/AVIF: the first image's ispe box
    if data[:1] == b"\x0a" and len(data) >= 12:  # PCX: xmin, ymin, xmax, ymax
        return ((4, 2, "little"), (6, 2, "little"), (8, 2, "little"), (10, 2, "little"))
    return ()


def _gif_frame_fields(data: bytes) -> SIZE_FIELDS:
    position = 13
    if data[10] & 0x80:
        position += 3 * 2 ** ((data[10] & 7) + 1)
    while position < len(data) and data[position] == 0x21:  # skip extensions
        position += 2
        while position < len(data) and data[position]:
            position += data[position] + 1
        position += 1
    if position + 9 <= len(data) and data[position] == 0x2C:
        return ((position + 5, 2, "little"), (position + 7, 2, "little"))
    return ()


def _jpeg_sof_fields(data: bytes) -> SIZE_FIELDS:
    position = 2
    while position + 9 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return ((position + 5, 2, "big"), (position + 7, 2, "big"))
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
    return ()


def _tiff_fields(data: bytes) -> SIZE_FIELDS:
    order = "little" if data[:2] == b"II" else "big"
    ifd = int.from_bytes(data[4:8], order)
    if ifd + 2 > len(data):
        return ()
    fields = []
    for index in range(int.from_bytes(data[ifd : ifd + 2], order)):
        entry = ifd + 2 + 12 * index
        if entry + 12 > len(data):
            break
        tag, kind = (
            int.from_bytes(data[entry : entry + 2], order),
            int.from_bytes(data[entry + 2 : entry + 4], order),
        )
        if tag in (256, 257):
            fields.append((entry + 8, 2 if kind == 3 else 4, order))
    return tuple(fields)


@st.composite
def declared_sizes(draw, data: bytes) -> bytes:
    """Each size field set to an interesting or random value; PNG's IHDR CRC usually fixed."""
    fields = size_fields(data)
    if not fields:  # not an image format we know: write big numbers into the header instead
        fields = ((draw(st.integers(0, max(0, min(len(data), 32) - 4))), 4, "big"),) if len(data) >= 4 else ()
    mutated = bytearray(data)
    for offset, width, order in fields:
        limit = 2 ** (8 * width) - 1
        value = draw(st.one_of(st.sampled_from(INTERESTING_SIZES), st.integers(0, limit)))
        mutated[offset : offset + width] = min(value, limit).to_bytes(width, order)
    crc_fixed = draw(st.integers(0, 3)) > 0  # mostly: a bad CRC only tests the CRC check
    if data.startswith(b"\x89PNG") and data[12:16] == b"IHDR" and crc_fixed:
        mutated[29:33] = struct.pack(">I", zlib.crc32(bytes(mutated[12:29])))
    return bytes(mutated)


MUTATIONS = {
    "bit_flips": bit_flips,
    "truncation": truncations,
    "header_edits": header_edits,
    "declared_sizes": declared_sizes,
}


@pytest.mark.parametrize("kind", sorted(MUTATIONS))
@pytest.mark.parametrize("name", FIXTURES)
@FUZZ_SETTINGS
@given(data=st.data())
def test_mutated_fixture_gives_a_thumbnail_or_a_documented_permanent_error(name, kind, data):
    original = (IMAGES_DIR / name).read_bytes()
    mutated = data.draw(MUTATIONS[kind](original), label=f"{kind} of {name}")
    check(kind, name, mutated)


@functools.cache
def _fast_path_source(name: str) -> bytes:
    return FAST_PATH_SOURCES[name]()


@pytest.mark.parametrize("kind", ["bit_flips", "truncation", "header_edits"])
@pytest.mark.parametrize("name", sorted(FAST_PATH_SOURCES))
@settings(FUZZ_SETTINGS, max_examples=max(EXAMPLES // 2, 1))
@given(data=st.data())
def test_mutated_large_source_through_the_fast_paths(name, kind, data):
    # The fixtures are too small for thumbnailer/decoders/ (its own bitstream parsing and the
    # ctypes libwebp decode); these generated sources reach it.
    mutated = data.draw(MUTATIONS[kind](_fast_path_source(name)), label=f"{kind} of {name}")
    check(kind, name, mutated)


def test_size_fields_are_found_in_every_image_fixture():
    # Guards the declared_sizes strategy: each image format's size fields must be located.
    without = [name for name in FIXTURES if not size_fields((IMAGES_DIR / name).read_bytes())]
    assert without == ["corrupt-garbage.png", "empty.jpg", "not-an-image.jpg"]


def _with_size(name: str, width: int, height: int) -> bytes:
    data = bytearray((IMAGES_DIR / name).read_bytes())
    for (offset, size, order), value in zip(size_fields(bytes(data)), (width, height), strict=False):
        data[offset : offset + size] = value.to_bytes(size, order)
    if name.endswith(".png"):
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# 7071 x 7071 = 49,999,041 pixels, just under MAX_SOURCE_PIXELS; 7072 x 7072 is just over.
LIMIT_CASES = {
    "gif-canvas-under-limit": ("gif-static.gif", 7071, 7071),
    "gif-canvas-over-limit": ("gif-static.gif", 7072, 7072),
    "png-under-limit": ("png-rgba.png", 7071, 7071),
    "bmp-under-limit": ("bmp-rgb.bmp", 7071, 7071),
    "jpeg-under-limit": ("jpeg-baseline.jpg", 7071, 7071),
    "tiff-under-limit": ("tiff-rgb.tiff", 7071, 7071),
    "webp-under-limit": ("webp-alpha.webp", 7071, 7071),
    "heif-under-limit": ("heic-hopper.heif", 7071, 7071),
    "avif-under-limit": ("avif-transparent.avif", 7071, 7071),
}


@pytest.mark.parametrize("case", sorted(LIMIT_CASES))
def test_declared_size_at_the_pixel_limit_stays_within_time_and_memory(case):
    # The costliest inputs the header check lets through: a canvas just under the limit with
    # little or no pixel data. They are measured (report: "limit_sizes") and held to the same
    # contract; a GIF canvas legitimately decodes to a thumbnail.
    name, width, height = LIMIT_CASES[case]
    started = time.perf_counter()
    check("limit_sizes", name, _with_size(name, width, height))
    assert time.perf_counter() - started < DEADLINE.total_seconds()

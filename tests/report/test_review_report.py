"""The golden review report, built with deliberate failures, renders in headless Chromium.

Needs a Chromium binary (`make browser`, Debian's chromium); set CHROMIUM to its path when it is
not on PATH under a usual name. Without one the browser checks skip and say so, except in CI and
under THUMBNAILER_CHROMIUM_REQUIRED (tox -e golden-report sets it), where they fail.
"""

import contextlib
import io
import json
import os
import re
import signal
import subprocess

import numpy as np
import pytest
from PIL import Image

from harness import golden
from harness.fixtures import image_bytes
from tests.support import tiers
from thumbnailer import make_thumbnail

pytestmark = pytest.mark.golden

CHROMIUM_TIMEOUT = 90  # seconds; a cold start on a 2-core CI machine takes about 2
WINDOW = (1280, 1600)
# A blank or broken page is one or two colours; a page of text only has a few hundred shades of
# grey. The report's first screen shows thumbnails, red failure borders and a checkerboard.
MIN_DISTINCT_COLOURS = 500
MIN_SATURATED_FRACTION = 0.01  # pixels whose channels differ by more than SATURATED_SPREAD
SATURATED_SPREAD = 80

# Written into a copy of the report: lists every <img> once the page (with its images) loaded.
IMAGE_CHECK_SCRIPT = """
<script>
window.addEventListener("load", () => {
  const results = Array.from(document.images, (img) => ({
    src: img.getAttribute("src"), complete: img.complete, naturalWidth: img.naturalWidth,
  }));
  const out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = JSON.stringify(results);
  document.body.appendChild(out);
});
</script>
"""


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """A callable running headless Chromium with throwaway state; skips (or fails) when there is none."""
    binary = tiers.chromium()
    profile = tmp_path_factory.mktemp("chromium-profile")

    def run(*args: str) -> str:
        command = [
            binary,
            "--headless",
            "--no-sandbox",  # root in CI containers
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            *args,
        ]
        # A session of its own, so that the renderer and GPU helpers end with it.
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            stdout, stderr = process.communicate(timeout=CHROMIUM_TIMEOUT)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert process.returncode == 0, f"{' '.join(command)} exited {process.returncode}:\n{stderr[-3000:]}"
        return stdout

    return run


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A review report with failures of several kinds and passes, built in a temporary directory.

    Returns (index.html path, {name: AssertionError message}).
    """
    directory = tmp_path_factory.mktemp("golden-review")
    patch = pytest.MonkeyPatch()
    patch.setenv(golden.REVIEW_DIR_ENV, str(directory))
    failures = {}
    try:
        # Failing: a colour cast, a 1-pixel shift of a transparent image, a missing rotation
        # (sizes differ, so no diff image).
        cast = np.asarray(Image.open(golden.golden_path("png-rgb.png")).convert("RGB")).astype(np.int16)
        cast[..., 0] += 40
        failing = {
            "png-rgb.png": _png(np.clip(cast, 0, 255).astype(np.uint8)),
            "png-rgba.png": _png(np.roll(np.asarray(Image.open(golden.golden_path("png-rgba.png"))), 3, 1)),
            "jpeg-exif-orientation-6.jpg": _jpeg_without_rotation("jpeg-exif-orientation-6.jpg"),
        }
        for name, data in failing.items():
            with pytest.raises(AssertionError) as raised:
                golden.assert_matches_golden(name, data)
            failures[name] = str(raised.value)
        for name in ("jpeg-baseline.jpg", "ünïcödé-名前.png", "name with spaces.jpg", "tiff-rgba.tiff"):
            golden.assert_matches_golden(name, make_thumbnail(image_bytes(name)).data)
    finally:
        patch.undo()
    return directory / "index.html", failures


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg_without_rotation(name: str) -> bytes:
    image = Image.open(io.BytesIO(image_bytes(name)))
    image.thumbnail((128, 128), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def test_failure_message_names_the_report_and_the_accept_command(report):
    index, failures = report
    message = failures["png-rgb.png"]

    assert "red mean abs diff" in message
    assert str(index) in message
    assert "make golden-accept NAMES=png-rgb.png" in message
    assert (index.parent / "new" / "png-rgb.png").is_file()


def test_report_lists_failures_first_and_collapses_passes(report):
    index, failures = report
    page = index.read_text(encoding="utf-8")
    headings = re.findall(r"<h2>(PASS|FAIL): ([^<]+)</h2>", page)

    statuses = [status for status, _ in headings]
    assert statuses == ["FAIL"] * len(failures) + ["PASS"] * 4
    assert page.index("<details>") > page.rindex("FAIL: ")
    assert f"&ge; <b>{golden.MIN_SSIM_LUMA}</b>" in page
    entries = sorted(path.name for path in (index.parent / "entries").glob("*.json"))
    assert len(entries) == len(failures) + 4


def test_failures_show_source_golden_new_and_diff(report):
    index, _ = report
    entries = [json.loads(path.read_text()) for path in (index.parent / "entries").glob("*.json")]
    roles = {entry["name"]: set(entry["images"]) for entry in entries}

    assert roles["png-rgb.png"] == {"source", "golden", "new", "diff"}
    assert roles["png-rgba.png"] == {"source", "golden", "new", "diff"}
    # Sizes differ: nothing to subtract, the report says why instead.
    assert roles["jpeg-exif-orientation-6.jpg"] == {"source", "golden", "new"}


def test_every_image_loads_in_chromium(report, chromium):
    index, _ = report
    check = index.with_name("image-check.html")
    check.write_text(index.read_text(encoding="utf-8").replace("</body>", IMAGE_CHECK_SCRIPT + "</body>"))

    dom = chromium("--dump-dom", check.as_uri())

    found = re.search(r'<pre id="image-check">(.*?)</pre>', dom, re.S)
    assert found, f"the check script did not run; DOM starts with: {dom[:500]}"
    results = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert len(results) >= 3 * 4 + 4 * 3, results
    broken = [result["src"] for result in results if not result["complete"] or result["naturalWidth"] == 0]
    assert not broken, f"images that did not load: {broken}"


def test_screenshot_is_not_blank(report, chromium, tmp_path):
    index, _ = report
    screenshot = tmp_path / "report.png"

    chromium(f"--screenshot={screenshot}", index.as_uri())

    pixels = np.asarray(Image.open(screenshot).convert("RGB"))
    distinct = len(np.unique(pixels.reshape(-1, 3), axis=0))
    spread = pixels.max(axis=2).astype(int) - pixels.min(axis=2)
    saturated = float((spread > SATURATED_SPREAD).mean())
    assert distinct > MIN_DISTINCT_COLOURS, f"{distinct} distinct colours in {screenshot}"
    assert saturated > MIN_SATURATED_FRACTION, f"{saturated:.2%} saturated pixels in {screenshot}"

"""The goldens in fixtures/golden/: compare thumbnails with them, report mismatches, accept changes.

    make golden-report                        # the current core against every golden, as a report
    make golden-accept NAMES="a.jpg b.png"    # goldens := the current core's output (no NAMES: all)
    make golden-accept FROM_REVIEW=1          # the last failing run's new thumbnails (NAMES= too)

The targets run `python -m harness.golden report|accept [--from-review] [NAMES]` in the unit test
environment (numpy, Pillow). `accept` regenerates a golden with `make_thumbnail` and its defaults:
a golden is by definition what the core writes, whatever an earlier run left in build/. With no
names every valid fixture is regenerated and goldens of images that are no longer valid fixtures
are removed. `--from-review` copies the thumbnails the last failing run saved in
build/golden-review/new/ instead (for thumbnails that did not come from the local core, e.g. the
deployed function's). `report` exits 1 when anything differs.

A golden is the exact file `make_thumbnail` wrote for the fixture image of the same name (so
`fixtures/golden/bmp-rgb.bmp` holds PNG bytes, as the deployed function writes them). Goldens
are compared perceptually, not byte for byte, so that an encoder or decoder update that nobody
can see does not fail the suite while a visible change does:

1. the output format, the size and the stored mode must be equal (palette images count as the
   RGB or RGBA they display, 1-bit as L);
2. both images are decoded to RGBA and composited over mid-grey, so colours under fully
   transparent pixels (which nobody sees) do not count;
3. SSIM of the luma must reach MIN_SSIM_LUMA (structure: resampling, shifts, rotation, blocking);
4. the mean absolute difference of each colour channel must stay within MAX_CHANNEL_MAD (colour
   casts) and that of the alpha channel within MAX_ALPHA_MAD (transparency).

`assert_matches_golden` also records each comparison in a review report (build/golden-review/
by default, GOLDEN_REVIEW_DIR overrides): one JSON entry per image in entries/, PNGs in img/,
the new thumbnail as written in new/<name>, and index.html regenerated on every record, failures
first. The report holds the entries of the latest run only (one pytest session, or one
`make golden-report`); pytest-xdist workers share a run through PYTEST_XDIST_TESTRUNUID.
"""

import argparse
import contextlib
import fcntl
import hashlib
import html
import io
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image, ImageOps

from harness import REPO_ROOT
from harness.fixtures import IMAGES_DIR, VALID_IMAGES, image_bytes
from thumbnailer import make_thumbnail

GOLDEN_DIR = REPO_ROOT / "fixtures" / "golden"
REVIEW_DIR_ENV = "GOLDEN_REVIEW_DIR"
DEFAULT_REVIEW_DIR = REPO_ROOT / "build" / "golden-review"
ACCEPT_TARGET = "make golden-accept"
# Goldens are committed; a thumbnail of 128 px should never need more than this.
MAX_GOLDEN_BYTES = 10 * 1024
# Files in fixtures/golden/ that are not goldens.
NOT_GOLDENS = {"README.md"}

# Tolerances. Measured on the fixtures with tests/unit/test_golden_tolerance.py (values in its
# comments and in the README table); each sits between the largest difference nobody can see and
# the smallest defect that must fail.
#
# Luma SSIM (Gaussian window, sigma 1.5, as Wang et al. 2004). Invisible differences measured:
# JPEG quality 84 vs 85 >= 0.992, WebP quality 84 vs 85 0.986, libjpeg scaled vs full decode
# >= 0.990, +-1 noise >= 0.997, Pillow 11.0/12.0 vs 13.0 output >= 0.9999. Defects: JPEG quality
# 30 <= 0.924 (WebP 0.967), NEAREST instead of LANCZOS <= 0.89, 1-pixel shift <= 0.88, missing
# 180-degree EXIF rotation 0.32. Thumbor accepts > 0.95, too loose for 128-px thumbnails: it
# passes a visibly blocky JPEG quality 70 (0.956).
# Quality 80 already measures 0.973 and fails: changing the quality setting is a reviewed change.
MIN_SSIM_LUMA = 0.975
# Mean absolute difference per colour channel, 0..255 levels, composited over grey (Pillow's
# `assert_image_similar` measure, per channel). Invisible: re-encoding or quality 84 vs 85 moves
# the blue channel of a JPEG by up to 2.8 levels on average (chroma subsampling), +-1 noise
# by 0.7. A +12 red cast measures ~11. 5.0 lies about midway (geometrically) between them.
MAX_CHANNEL_MAD = 5.0
# Mean absolute difference of alpha. Every output format stores its alpha losslessly (GIF as one
# bit), so only resampling moves it: +-1 noise gives 0.44 and BILINEAR instead of LANCZOS 1.5,
# while flattening the transparency of png-rgba.png measures 196.
MAX_ALPHA_MAD = 3.0

# Luma weights of ITU-R BT.601 (what JPEG's YCbCr uses) and the grey transparent pixels show.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])
_BACKGROUND_GREY = 128.0
_SSIM_SIGMA = 1.5
# 11 taps, as in the SSIM paper. Checked against scikit-image's structural_similarity(
# gaussian_weights=True, sigma=1.5, use_sample_covariance=False): equal to 6 decimals once its
# 5-pixel border crop is applied to ssim_map().
_SSIM_RADIUS = 5
_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2
# Differences are multiplied by this in the review's diff image, so 1 level shows as 8.
DIFF_GAIN = 8
_REVIEW_SOURCE_MAX = 256
# One report per run: `make test` names its run (unit and integration, in parallel, add to one report).
RUN_ENV = "GOLDEN_REVIEW_RUN"
_RUN_ID = (
    os.environ.get(RUN_ENV) or os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"{os.getpid()}-{time.time_ns()}"
)


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing one thumbnail with its golden; `problems` is empty on a pass."""

    name: str
    problems: tuple[str, ...]
    golden_format: str | None = None
    new_format: str | None = None
    golden_size: tuple[int, int] | None = None
    new_size: tuple[int, int] | None = None
    golden_mode: str | None = None
    new_mode: str | None = None
    ssim_luma: float | None = None
    mad: dict[str, float] = field(default_factory=dict)
    golden_bytes: bytes | None = field(default=None, repr=False)
    new_bytes: bytes = field(default=b"", repr=False)
    source_bytes: bytes | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return not self.problems

    def measures(self) -> str:
        """The measured values on one line, e.g. for a failure message."""
        parts = []
        if self.ssim_luma is not None:
            parts.append(f"luma SSIM {self.ssim_luma:.4f}")
        parts += [f"{channel} MAD {value:.2f}" for channel, value in self.mad.items()]
        return ", ".join(parts) or "not measured (format, size or mode differ)"


def golden_path(name: str) -> Path:
    """Where the golden of fixtures/images/<name> lives."""
    return GOLDEN_DIR / name


def review_dir() -> Path:
    """The review report's directory: $GOLDEN_REVIEW_DIR, else build/golden-review."""
    return Path(os.environ.get(REVIEW_DIR_ENV) or DEFAULT_REVIEW_DIR)


def accept_command(*names: str) -> str:
    """The shell command that accepts the current core's output for `names` as goldens (none: all).

    The recipe hands NAMES to the shell, so each name is quoted for it, inside the quoted value.
    """
    if not names:
        return ACCEPT_TARGET
    value = shlex.join(names)
    assignment = f"NAMES={value}"
    if shlex.quote(assignment) == assignment:
        return f"{ACCEPT_TARGET} {assignment}"
    if not set(value) & set('"$`\\!'):
        return f'{ACCEPT_TARGET} NAMES="{value}"'
    return f"{ACCEPT_TARGET} {shlex.quote(assignment)}"


def compare_with_golden(
    name: str, thumbnail_bytes: bytes, *, source_bytes: bytes | None = None
) -> Comparison:
    """Compare an encoded thumbnail with fixtures/golden/<name> (see the module docstring).

    `source_bytes` is only kept for the review report; by default fixtures/images/<name> is used.
    """
    if source_bytes is None and (IMAGES_DIR / name).is_file():
        source_bytes = (IMAGES_DIR / name).read_bytes()
    path = golden_path(name)
    if not path.is_file():
        return Comparison(
            name=name,
            problems=(f"no golden at {_shown(path)}",),
            new_bytes=thumbnail_bytes,
            source_bytes=source_bytes,
        )
    return compare_images(name, path.read_bytes(), thumbnail_bytes, source_bytes=source_bytes)


def compare_images(
    name: str, golden_bytes: bytes, new_bytes: bytes, *, source_bytes: bytes | None = None
) -> Comparison:
    """Compare two encoded images: format, size and stored mode first, then SSIM and MADs."""
    known = {"name": name, "golden_bytes": golden_bytes, "new_bytes": new_bytes, "source_bytes": source_bytes}
    try:
        new = _decode(new_bytes)
    except Exception as exc:  # whatever the decoder raises, the thumbnail is unusable
        return Comparison(problems=(f"the new thumbnail cannot be decoded: {exc!r}",), **known)
    golden = _decode(golden_bytes)
    known |= {
        "golden_format": golden.format,
        "new_format": new.format,
        "golden_size": golden.size,
        "new_size": new.size,
        "golden_mode": stored_mode(golden),
        "new_mode": stored_mode(new),
    }
    problems = []
    if new.format != golden.format:
        problems.append(f"format {new.format} != golden {golden.format}")
    if new.size != golden.size:
        problems.append(f"size {new.size[0]}x{new.size[1]} != golden {golden.size[0]}x{golden.size[1]}")
    if known["new_mode"] != known["golden_mode"]:
        problems.append(f"mode {known['new_mode']} != golden {known['golden_mode']}")
    if problems:
        return Comparison(problems=tuple(problems), **known)

    expected, actual = _rgba(golden), _rgba(new)
    expected_rgb, actual_rgb = _over_grey(expected), _over_grey(actual)
    ssim = float(ssim_map(expected_rgb @ _LUMA_WEIGHTS, actual_rgb @ _LUMA_WEIGHTS).mean())
    mad = {
        channel: float(np.abs(expected_rgb[..., index] - actual_rgb[..., index]).mean())
        for index, channel in enumerate(("red", "green", "blue"))
    }
    mad["alpha"] = float(np.abs(expected[..., 3] - actual[..., 3]).mean())
    if ssim < MIN_SSIM_LUMA:
        problems.append(f"luma SSIM {ssim:.4f} < MIN_SSIM_LUMA {MIN_SSIM_LUMA}")
    problems += [
        f"{channel} mean abs diff {value:.2f} > MAX_CHANNEL_MAD {MAX_CHANNEL_MAD}"
        for channel, value in mad.items()
        if channel != "alpha" and value > MAX_CHANNEL_MAD
    ]
    if mad["alpha"] > MAX_ALPHA_MAD:
        problems.append(f"alpha mean abs diff {mad['alpha']:.2f} > MAX_ALPHA_MAD {MAX_ALPHA_MAD}")
    return Comparison(problems=tuple(problems), ssim_luma=ssim, mad=mad, **known)


def assert_matches_golden(
    name: str, thumbnail_bytes: bytes, *, source_bytes: bytes | None = None
) -> Comparison:
    """Compare with the golden, record the result in the review report, fail on a mismatch.

    The failure message names the problems, the report's index.html and the accept command.
    """
    comparison = compare_with_golden(name, thumbnail_bytes, source_bytes=source_bytes)
    index = record(comparison)
    if not comparison.passed:
        lines = [f"{name} does not match its golden fixtures/golden/{name}:"]
        lines += [f"  - {problem}" for problem in comparison.problems]
        lines += [
            f"  measured: {comparison.measures()}",
            f"review the images: {index} (new thumbnail saved in {index.parent / 'new' / name})",
            f"if the change is intended, accept it: {accept_command(name)}",
        ]
        raise AssertionError("\n".join(lines))
    return comparison


def stored_mode(image: Image.Image) -> str:
    """The mode an image displays as: palettes become RGB or RGBA, 1-bit L, tRNS adds alpha."""
    mode = image.mode
    has_transparency = "transparency" in image.info
    if mode in ("P", "PA"):
        return "RGBA" if has_transparency or mode == "PA" else "RGB"
    if mode == "1":
        return "L"
    if mode in ("L", "RGB") and has_transparency:
        return mode + "A"
    return {"La": "LA", "RGBa": "RGBA", "RGBX": "RGB"}.get(mode, mode)


def ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two greyscale float arrays in 0..255 (Gaussian window, mirrored edges).

    Every pixel counts, the borders too (scikit-image crops a 5-pixel border, which would drop a
    fifth of a 100x50 thumbnail); images smaller than the window still work (1x1, 128x1).
    """
    mu_x, mu_y = _gaussian_blur(x), _gaussian_blur(y)
    var_x = _gaussian_blur(x * x) - mu_x * mu_x
    var_y = _gaussian_blur(y * y) - mu_y * mu_y
    cov = _gaussian_blur(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _SSIM_C1) * (2 * cov + _SSIM_C2)
    return numerator / ((mu_x * mu_x + mu_y * mu_y + _SSIM_C1) * (var_x + var_y + _SSIM_C2))


def _gaussian_blur(values: np.ndarray) -> np.ndarray:
    taps = np.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=np.float64)
    kernel = np.exp(-(taps * taps) / (2 * _SSIM_SIGMA**2))
    kernel /= kernel.sum()
    padded = np.pad(values, _SSIM_RADIUS, mode="symmetric")
    rows = np.lib.stride_tricks.sliding_window_view(padded, kernel.size, axis=0) @ kernel
    return np.lib.stride_tricks.sliding_window_view(rows, kernel.size, axis=1) @ kernel


def _shown(path: Path) -> Path:
    """`path` relative to the repository when it is inside it."""
    return path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _rgba(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGBA"), dtype=np.float64)


def _over_grey(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4] / 255.0
    return rgba[..., :3] * alpha + _BACKGROUND_GREY * (1.0 - alpha)


# The review report ----------------------------------------------------------------------------


def record(comparison: Comparison, directory: Path | None = None) -> Path:
    """Add `comparison` to the review report and regenerate its index; returns index.html's path.

    Entries of an earlier run are removed first. A lock file serialises writers (xdist workers,
    test environments of one `make test`). A pass never replaces a failure of the same image in the
    same run (the core's and the deployed function's thumbnails of one fixture share its entry).
    """
    directory = directory or review_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory):
        _start_run(directory)
        slug = _slug(comparison.name)
        earlier = directory / "entries" / f"{slug}.json"
        if comparison.passed and earlier.exists() and not json.loads(earlier.read_text())["passed"]:
            return directory / "index.html"
        images = _write_images(directory, slug, comparison)
        new_copy = directory / "new" / comparison.name
        new_copy.parent.mkdir(exist_ok=True)
        new_copy.write_bytes(comparison.new_bytes)
        entry = {
            "run": _RUN_ID,
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "name": comparison.name,
            "passed": comparison.passed,
            "problems": list(comparison.problems),
            "measures": comparison.measures(),
            "ssim_luma": comparison.ssim_luma,
            "mad": comparison.mad,
            "golden": _describe(comparison.golden_format, comparison.golden_size, comparison.golden_mode),
            "new": _describe(comparison.new_format, comparison.new_size, comparison.new_mode),
            "images": images,
            "accept": accept_command(comparison.name),
        }
        _write_atomic(directory / "entries" / f"{slug}.json", json.dumps(entry, indent=1).encode())
        return _write_index(directory)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _start_run(directory: Path) -> None:
    """Empty the report when it belongs to another run, so it only shows the latest one."""
    marker = directory / "run.json"
    try:
        current = json.loads(marker.read_text())["run"]
    except (OSError, ValueError, KeyError):
        current = None
    if current == _RUN_ID:
        return
    for child in ("entries", "img", "new", "index.html"):
        path = directory / child
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for child in ("entries", "img", "new"):
        (directory / child).mkdir()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    _write_atomic(marker, json.dumps({"run": _RUN_ID, "started": started}).encode())


def _slug(name: str) -> str:
    """A file-name-safe, collision-free stand-in for a fixture name (spaces, non-ASCII)."""
    safe = "".join(char if char.isascii() and (char.isalnum() or char in "-_.") else "_" for char in name)
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def _describe(image_format: str | None, size: tuple[int, int] | None, mode: str | None) -> str:
    if image_format is None:
        return "missing"
    return f"{image_format} {size[0]}x{size[1]} {mode}"


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _write_images(directory: Path, slug: str, comparison: Comparison) -> dict[str, list]:
    """Save source, golden, new and diff as PNGs (browsers show no BMP/TIFF).

    Returns {role: [relative path, width, height]}.
    """
    images = {}
    candidates = {
        "source": _source_preview(comparison.source_bytes),
        "golden": _try_decode(comparison.golden_bytes),
        "new": _try_decode(comparison.new_bytes),
    }
    golden, new = candidates["golden"], candidates["new"]
    if golden is not None and new is not None and golden.size == new.size:
        candidates["diff"] = diff_image(golden, new)
    for role, image in candidates.items():
        if image is None:
            continue
        relative = f"img/{slug}.{role}.png"
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        _write_atomic(directory / relative, buffer.getvalue())
        images[role] = [relative, image.width, image.height]
    return images


def diff_image(golden: Image.Image, new: Image.Image) -> Image.Image:
    """Per-pixel largest channel difference (alpha included) times DIFF_GAIN, as a heat map."""
    expected, actual = _rgba(golden), _rgba(new)
    colour = np.abs(_over_grey(expected) - _over_grey(actual)).max(axis=2)
    alpha = np.abs(expected[..., 3] - actual[..., 3])
    amplified = np.clip(np.maximum(colour, alpha) * DIFF_GAIN, 0, 255).astype(np.uint8)
    return ImageOps.colorize(Image.fromarray(amplified, "L"), black="black", white="white", mid="red")


def _try_decode(data: bytes | None) -> Image.Image | None:
    if not data:
        return None
    try:
        return _decode(data).convert("RGBA")
    except Exception:  # an undecodable image is reported in `problems`, not here
        return None


def _source_preview(data: bytes | None) -> Image.Image | None:
    """The source as a viewer displays it (EXIF orientation applied), at most 256 px."""
    if not data:
        return None
    try:
        image = ImageOps.exif_transpose(_decode(data))
        if image.mode.startswith("I"):
            image = image.point(lambda value: value / 257, "L")
        image = image.convert("RGBA")
    except Exception:  # a broken source only loses its preview
        return None
    image.thumbnail((_REVIEW_SOURCE_MAX, _REVIEW_SOURCE_MAX), Image.Resampling.LANCZOS)
    return image


def _write_index(directory: Path) -> Path:
    entries = []
    for path in sorted((directory / "entries").glob("*.json")):
        entry = json.loads(path.read_text())
        if entry.get("run") == _RUN_ID:
            entries.append(entry)
    entries.sort(key=lambda entry: (entry["passed"], entry["name"]))
    failed = [entry for entry in entries if not entry["passed"]]
    passed = [entry for entry in entries if entry["passed"]]
    index = directory / "index.html"
    _write_atomic(index, _render_index(failed, passed).encode())
    return index


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin: 0 0 .4em; }
section { background: #fff; border: 1px solid #ddd; border-left: 6px solid #c22; padding: .8em 1em;
  margin: 0 0 1em; }
section.pass { border-left-color: #2a2; }
.row { display: flex; gap: 1.2em; flex-wrap: wrap; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: .85em; color: #555; }
.checker { background: repeating-conic-gradient(#ccc 0 25%, #fff 0 50%) 0 0 / 16px 16px;
  display: inline-block; line-height: 0; border: 1px solid #bbb; }
img.thumb { image-rendering: pixelated; }
code { background: #eee; padding: 0 .3em; } ul { margin: .3em 0; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
"""

_CAPTIONS = {
    "source": "source (as displayed)",
    "golden": "golden (expected)",
    "new": "new thumbnail",
    "diff": f"difference x{DIFF_GAIN}",
}


def _render_index(failed: list[dict], passed: list[dict]) -> str:
    title = f"Golden review: {len(failed)} failed, {len(passed)} passed"
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>Tolerances: luma SSIM &ge; <b>{MIN_SSIM_LUMA}</b>; mean abs diff per colour channel "
        f"&le; <b>{MAX_CHANNEL_MAD}</b>; alpha &le; <b>{MAX_ALPHA_MAD}</b> (harness/golden.py).</p>",
    ]
    if failed:
        every_failure = accept_command(*(entry["name"] for entry in failed))
        parts.append(f"<p>Accept every failure below: <code>{html.escape(every_failure)}</code></p>")
    parts += [_render_entry(entry) for entry in failed]
    if passed:
        parts.append(f"<details><summary>{len(passed)} passed</summary>")
        parts += [_render_entry(entry) for entry in passed]
        parts.append("</details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _render_entry(entry: dict) -> str:
    status = "pass" if entry["passed"] else "fail"
    figures = []
    for role, caption in _CAPTIONS.items():
        if role not in entry["images"]:
            continue
        relative, width, height = entry["images"][role]
        # Thumbnails are shown at twice their size, pixelated, so single-pixel changes show.
        scale = 1 if role == "source" else 2
        image_class = "" if role == "source" else " class=thumb"
        figures.append(
            f"<figure><span class=checker><img{image_class} src='{html.escape(quote(relative))}' "
            f"alt='{role}' width={width * scale} height={height * scale}></span>"
            f"<figcaption>{caption} {width}x{height}</figcaption></figure>"
        )
    problems = "".join(f"<li>{html.escape(problem)}</li>" for problem in entry["problems"])
    return (
        f"<section class={status} id='{html.escape(_slug(entry['name']))}'>"
        f"<h2>{status.upper()}: {html.escape(entry['name'])}</h2>"
        f"<ul>{problems}</ul>"
        f"<table><tr><th>golden</th><td>{html.escape(entry['golden'])}</td></tr>"
        f"<tr><th>new</th><td>{html.escape(entry['new'])}</td></tr>"
        f"<tr><th>measured</th><td>{html.escape(entry['measures'])}</td></tr></table>"
        f"<div class=row>{''.join(figures)}</div>"
        f"<p>Accept: <code>{html.escape(entry['accept'])}</code></p></section>"
    )


def entries_of_last_run(directory: Path | None = None) -> list[dict]:
    """The review entries of the run that last wrote the report (for `accept --from-review`)."""
    directory = directory or review_dir()
    try:
        run = json.loads((directory / "run.json").read_text())["run"]
    except (OSError, ValueError, KeyError):
        return []
    entries = [json.loads(path.read_text()) for path in sorted((directory / "entries").glob("*.json"))]
    return [entry for entry in entries if entry.get("run") == run]


# The commands (make golden-accept, make golden-report) ----------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    accept = commands.add_parser("accept", help="write goldens (all valid fixtures when no NAMES)")
    accept.add_argument("names", nargs="*", metavar="NAMES")
    accept.add_argument(
        "--from-review",
        action="store_true",
        help="copy the last failing run's build/golden-review/new/<name> instead of regenerating",
    )
    report = commands.add_parser("report", help="review report of the current core vs the goldens")
    report.add_argument("names", nargs="*", metavar="NAMES")
    args = parser.parse_args(argv)

    unknown = sorted(set(args.names) - set(VALID_IMAGES))
    if unknown:
        parser.error(f"not valid fixture images: {', '.join(unknown)} (see harness/fixtures.py)")
    if args.command == "report":
        return _report(args.names or sorted(VALID_IMAGES))
    if args.from_review:
        return _accept_from_review(args.names)
    return _accept(args.names)


def _accept(names: list[str]) -> int:
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for name in names or sorted(VALID_IMAGES):
        _write_golden(name, make_thumbnail(image_bytes(name)).data)
    if not names:
        for path in sorted(GOLDEN_DIR.iterdir()):
            if path.name not in VALID_IMAGES and path.name not in NOT_GOLDENS:
                path.unlink()
                print(f"removed   {path.name} (no longer a valid fixture image)")
    return 0


def _accept_from_review(names: list[str]) -> int:
    directory = review_dir()
    entries = {entry["name"]: entry for entry in entries_of_last_run(directory)}
    wanted = names or sorted(name for name, entry in entries.items() if not entry["passed"])
    if not wanted:
        print(f"nothing to accept: the last run in {directory} had no failures")
        return 0
    missing = [name for name in wanted if not (directory / "new" / name).is_file()]
    if missing:
        print(f"no new thumbnail in {directory / 'new'} for: {', '.join(missing)}", file=sys.stderr)
        return 2
    for name in wanted:
        data = (directory / "new" / name).read_bytes()
        _write_golden(name, data)
        if data != make_thumbnail(image_bytes(name)).data:
            print(f"  note: {name} differs from what the local core writes (compared within tolerance)")
    return 0


def _write_golden(name: str, data: bytes) -> None:
    path = GOLDEN_DIR / name
    old = path.read_bytes() if path.is_file() else None
    if old == data:
        print(f"unchanged {name}")
        return
    path.write_bytes(data)
    print(f"{'updated' if old is not None else 'created'}   {name} ({len(data)} bytes)")
    if len(data) > MAX_GOLDEN_BYTES:
        print(f"  warning: {name} is larger than {MAX_GOLDEN_BYTES} bytes", file=sys.stderr)


def _report(names: list[str]) -> int:
    failed = 0
    index = None
    for name in names:
        source = image_bytes(name)
        comparison = compare_with_golden(name, make_thumbnail(source).data, source_bytes=source)
        index = record(comparison)
        if not comparison.passed:
            failed += 1
            print(f"FAIL {name}: {'; '.join(comparison.problems)}")
    print(f"{failed} of {len(names)} differ from their goldens; report: {index}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The third-party image corpus (tests/corpus/) and the plain reference thumbnailer it is compared with.

The corpus is what `python -m harness.corpus fetch` (`make corpus`) extracts into build/corpus/:
Pillow's and pillow-heif's test images, matplotlib's and scikit-image's sample photos, colour
profiles; build/corpus/manifest.json lists every file. THUMBNAILER_CORPUS_DIR points elsewhere.

The reference is written for the test alone and calls nothing from thumbnailer/: Pillow's generic
path, one obvious step at a time, with the contract the core implements (see `reference_thumbnail`).
It is slow and simple on purpose; the core may take any faster route to the same pixels.
"""

import io
import json
import os
import pickle
import select
import signal
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from harness import REPO_ROOT
from harness.golden import ssim_map, stored_mode

CORPUS_DIR_ENV = "THUMBNAILER_CORPUS_DIR"
DEFAULT_CORPUS_DIR = REPO_ROOT / "build" / "corpus"
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.json"

# The formats the service accepts. Image.open tries only these, as the core does.
REFERENCE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF", "HEIF")
MAX_PIXELS = 50_000_000
BOX = (128, 128)
# Output formats that cannot hold alpha: the reference is composited on white for them.
OPAQUE_OUTPUTS = frozenset({"JPEG"})
# GIF keeps one bit of alpha; pixels at least this opaque become opaque.
GIF_ALPHA_THRESHOLD = 128
# JPEG and WebP quality of the thumbnails (make_thumbnail's default, THUMBNAIL_JPEG_QUALITY).
OUTPUT_QUALITY = 85
# A thumbnailer call that takes longer hangs (the function's own timeout is 30 s at 512 MB).
CALL_TIMEOUT_S = 60.0

# Suffixes of corpus files that are data, not images (profiles, palettes, notes, archives). A file
# with one of these, or with no suffix, is still a candidate when some Pillow decoder knows it.
NOT_IMAGE_SUFFIXES = frozenset(
    (
        "",
        ".txt",
        ".py",
        ".icc",
        ".icm",
        ".lut",
        ".gpl",
        ".ggr",
        ".bin",
        ".pkl",
        ".gnuplot",
        ".tar",
        ".pdf",
        ".doc",
    )
)

# lcms's built-in sRGB: what every thumbnail's pixels mean, with no profile embedded.
_SRGB = ImageCms.createProfile("sRGB")
_LAB = ImageCms.createProfile("LAB")
_WHITE = 255.0
_GREY = 128.0
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


class CorpusMissing(Exception):
    """build/corpus/manifest.json does not exist: `make corpus` has not run."""


class ReferenceRejected(Exception):
    """The reference cannot thumbnail the file; `reason` uses the core's vocabulary."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self):
        return type(self), (self.reason, self.detail)


def corpus_dir() -> Path:
    """$THUMBNAILER_CORPUS_DIR, else build/corpus."""
    return Path(os.environ.get(CORPUS_DIR_ENV) or DEFAULT_CORPUS_DIR)


def load_manifest(directory: Path) -> dict:
    """The manifest written by harness/corpus.py; raises CorpusMissing when there is none."""
    path = directory / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CorpusMissing(f"no corpus at {path}") from None


def candidate_images(manifest: dict, directory: Path) -> list[str]:
    """Relative paths of the manifest's files that are images (of any format), sorted."""
    paths = []
    for entry in manifest["files"]:
        path = entry["path"]
        if PurePosixPath(path).suffix.lower() not in NOT_IMAGE_SUFFIXES or _identified(directory / path):
            paths.append(path)
    return sorted(paths)


def _identified(path: Path) -> bool:
    """Whether any registered decoder recognises the file (its header only)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path):
                return True
    except Exception:  # every decoder's own error means: not an image it knows
        return False


# Isolation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Isolated:
    """What a call in a child process returned, or how the child failed (`failure`)."""

    value: object = None
    failure: str | None = None


def run_isolated(function: Callable, *args, timeout: float = CALL_TIMEOUT_S) -> Isolated:
    """`function(*args)` in a forked child: a decoder that crashes or hangs ends the child, not the run.

    The corpus holds files made to crash decoders (one segfaulted pi-heif 1.4.0). The value comes
    back pickled; forking costs about 1 ms.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            try:
                payload = pickle.dumps(("value", function(*args)))
            except BaseException:
                payload = pickle.dumps(("raised", traceback.format_exc()))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(0)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while True:
            if not select.select([pipe], [], [], max(deadline - time.monotonic(), 0))[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return Isolated(failure=f"hung: no result after {timeout:.0f} s")
            chunk = pipe.read(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return Isolated(failure=f"crashed: killed by {signal.Signals(os.WTERMSIG(status)).name}")
    if not chunks:
        return Isolated(failure=f"exited with status {os.WEXITSTATUS(status)} and no result")
    kind, value = pickle.loads(b"".join(chunks))
    return Isolated(value=value) if kind == "value" else Isolated(failure=f"raised in the child: {value}")


# The reference ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceThumbnail:
    """The reference's thumbnail (mode RGB, RGBA, L or LA, sRGB) and how it got there."""

    image: Image.Image
    source_format: str
    source_mode: str
    colour: str


def reference_thumbnail(data: bytes, size: tuple[int, int] | None = None) -> ReferenceThumbnail:
    """The contract, the plain way: raises ReferenceRejected with the reason the core would log.

    Open with the accepted formats only; refuse more than MAX_PIXELS declared; decode the first
    frame; apply the EXIF orientation (TIFF's loader already did); make the mode plain (palette to
    RGB/RGBA, tRNS colour keys to alpha, 16-bit to 8-bit by /257, 1-bit to L, the rest to RGB);
    convert to sRGB through the embedded profile when lcms can use it; Lanczos into BOX, or to
    `size` exactly when given (to compare with a thumbnail one pixel off).
    """
    if not data:
        raise ReferenceRejected("empty", "0 bytes")
    _register_heif()
    image = _open(data)
    source_format, source_mode = image.format, image.mode
    icc_profile = image.info.get("icc_profile")
    try:
        image = ImageOps.exif_transpose(image)
        image = _plain_mode(image, has_cmyk_profile=bool(icc_profile))
        image, colour = _to_srgb(image, icc_profile)
        if size is None:
            image.thumbnail(BOX, Image.Resampling.LANCZOS)
        else:
            image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
        image.info = {}  # no metadata in a thumbnail (pillow-heif's would not even pickle)
    except MemoryError:
        raise
    except Exception as exc:  # whatever a damaged file makes a decoder raise
        raise ReferenceRejected("corrupt", f"{type(exc).__name__}: {exc}") from exc
    return ReferenceThumbnail(image, source_format, source_mode, colour)


def reference_or_rejection(data: bytes, size: tuple[int, int] | None = None):
    """`reference_thumbnail`, with a rejection returned instead of raised (for `run_isolated`)."""
    try:
        return reference_thumbnail(data, size)
    except ReferenceRejected as exc:
        return exc


def _register_heif() -> None:
    """Let Image.open read HEIF in this process only.

    The reference runs in a child (run_isolated), so the core under test never finds a HEIF
    decoder that it did not register itself.
    """
    if "HEIF" not in Image.OPEN:
        pillow_heif.register_heif_opener()


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=REFERENCE_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ReferenceRejected("too_many_pixels", str(exc)) from exc
    except UnidentifiedImageError:
        raise _unaccepted(data) from None
    except Exception as exc:
        raise ReferenceRejected("corrupt", f"header: {type(exc).__name__}: {exc}") from exc
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ReferenceRejected("too_many_pixels", f"{width}x{height}")
    if width < 1 or height < 1:
        raise ReferenceRejected("corrupt", f"empty size {width}x{height}")
    return image


def _unaccepted(data: bytes) -> ReferenceRejected:
    """An image in another format, or not an image at all."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as other:
                return ReferenceRejected("unsupported_format", f"{other.format}")
    except Exception:
        return ReferenceRejected("not_an_image", f"starts with {data[:8]!r}")


def _plain_mode(image: Image.Image, *, has_cmyk_profile: bool) -> Image.Image:
    """RGB, RGBA, L or LA (CMYK stays CMYK when a profile may convert it)."""
    mode = image.mode
    key = image.info.get("transparency")
    if mode in ("P", "PA"):
        return image.convert("RGBA" if mode == "PA" or key is not None else "RGB")
    if mode in ("1", "L", "RGB") or mode.startswith("I"):
        base = image
        if mode == "1":
            base = image.convert("L")  # Pillow states a 1-bit colour key as 0 or 255, as in L
        elif mode.startswith("I"):
            samples = np.asarray(image).astype(np.float64)
            base = Image.fromarray(np.clip(np.rint(samples / 257), 0, 255).astype(np.uint8), "L")
        if key is not None:
            base = _with_colour_key(base, np.asarray(base if mode == "1" else image), key)
        return base
    if mode in ("LA", "RGBA"):
        return image
    if mode in ("La", "RGBa"):
        return image.convert(mode.upper())
    if mode == "LAB":
        return ImageCms.profileToProfile(image, _LAB, _SRGB, outputMode="RGB")
    if mode == "CMYK" and has_cmyk_profile:
        return image
    return image.convert("RGB")


def _with_colour_key(base: Image.Image, samples: np.ndarray, key) -> Image.Image:
    """`base` with an alpha channel: 0 where the raw samples equal the tRNS colour key."""
    if samples.ndim == 3:
        transparent = np.all(samples == np.asarray(key, dtype=samples.dtype), axis=-1)
    else:
        transparent = samples == key
    alpha = Image.fromarray(np.where(transparent, 0, 255).astype(np.uint8), "L")
    with_alpha = base.convert("RGBA" if base.mode == "RGB" else "LA")
    with_alpha.putalpha(alpha)
    return with_alpha


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> tuple[Image.Image, str]:
    """Convert through the embedded profile; a profile lcms cannot read or apply counts as sRGB."""
    if not icc_profile:
        return _without_cmyk(image), "untagged"
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    colour = image.convert(image.mode[:-1]) if alpha is not None else image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        converted = ImageCms.profileToProfile(colour, source, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        return _without_cmyk(image), f"profile ignored ({exc})"
    if alpha is not None:
        converted.putalpha(alpha)
    return converted, "profile applied"


def _without_cmyk(image: Image.Image) -> Image.Image:
    return image.convert("RGB") if image.mode == "CMYK" else image


# The comparison --------------------------------------------------------------------------------


@dataclass
class Comparison:
    """How our thumbnail differs from the reference's; `problems` is empty when they agree."""

    category: str | None = None
    problems: list[str] = field(default_factory=list)
    ssim_luma: float | None = None
    mad: dict[str, float] = field(default_factory=dict)
    max_difference: float | None = None


@dataclass(frozen=True)
class Tolerance:
    """Limits of the pixel comparison for one kind of output."""

    min_ssim_luma: float
    max_channel_mad: float
    max_alpha_mad: float
    # Thumbnails whose pixels all lie this close (levels of 255) look the same, whatever SSIM says
    # (on flat or near-black images its constants make a 1-level offset cost 0.13).
    max_invisible_difference: float = 4.0


def decode(data: bytes) -> Image.Image:
    """Decode a thumbnail fully."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def within_box(size: tuple[int, int]) -> bool:
    """Whether a thumbnail's size respects BOX (and has at least one pixel each way)."""
    return all(1 <= side <= limit for side, limit in zip(size, BOX, strict=True))


def compare(
    reference: Image.Image, ours: Image.Image, output_format: str, tolerance: Tolerance
) -> Comparison:
    """Size (1 px of rounding allowed), transparency, then luma SSIM and per-channel MAD.

    The pixels are compared with the reference as the output format writes it (`as_written`), so
    that JPEG's and WebP's own loss, the same in any correct pipeline, is not counted. The sizes
    must be equal for that: call again with the reference made at our size when they differ by 1.
    """
    result = Comparison()
    (width, height), (ref_width, ref_height) = ours.size, reference.size
    if abs(width - ref_width) > 1 or abs(height - ref_height) > 1:
        result.category = "size"
        result.problems.append(f"size {width}x{height}, reference {ref_width}x{ref_height}")
        return result
    actual = _rgba(ours)
    opaque_output = output_format in OPAQUE_OUTPUTS
    if not opaque_output:
        lost, invented = _transparency_change(_rgba(reference)[..., 3], actual[..., 3], output_format)
        if lost or invented:
            result.category = "alpha"
            result.problems.append(
                "transparency lost: the reference has transparent pixels, ours none"
                if lost
                else "transparency invented: ours has transparent pixels, the reference none"
            )
    if ours.size != reference.size:
        return result
    expected = _rgba(as_written(reference, output_format))
    expected_rgb, actual_rgb = _over(expected, _GREY), _over(actual, _GREY)
    result.ssim_luma = float(ssim_map(expected_rgb @ _LUMA_WEIGHTS, actual_rgb @ _LUMA_WEIGHTS).mean())
    result.mad = {
        channel: float(np.abs(expected_rgb[..., index] - actual_rgb[..., index]).mean())
        for index, channel in enumerate(("red", "green", "blue"))
    }
    if not opaque_output:
        result.mad["alpha"] = float(np.abs(expected[..., 3] - actual[..., 3]).mean())
    result.max_difference = float(
        max(np.abs(expected_rgb - actual_rgb).max(), np.abs(expected - actual)[..., 3].max())
    )
    if result.max_difference <= tolerance.max_invisible_difference:
        return result
    pixel_problems = []
    if result.ssim_luma < tolerance.min_ssim_luma:
        pixel_problems.append(f"luma SSIM {result.ssim_luma:.4f} < {tolerance.min_ssim_luma}")
    for channel, value in result.mad.items():
        limit = tolerance.max_alpha_mad if channel == "alpha" else tolerance.max_channel_mad
        if value > limit:
            pixel_problems.append(f"{channel} mean abs diff {value:.2f} > {limit}")
    if pixel_problems:
        result.category = result.category or "pixel"
        result.problems += pixel_problems
    return result


def as_written(reference: Image.Image, output_format: str) -> Image.Image:
    """The reference as the output format stores it: JPEG (on white) and WebP at OUTPUT_QUALITY.

    PNG is lossless; GIF is left unquantised (its tolerance allows for the palette).
    """
    if output_format not in ("JPEG", "WEBP"):
        return reference
    image = reference
    if output_format == "JPEG":
        flattened = _over(_rgba(reference), _WHITE)
        image = Image.fromarray(np.rint(flattened).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, output_format, quality=OUTPUT_QUALITY)
    return decode(buffer.getvalue())


def describe(image: Image.Image) -> str:
    """Format, mode as displayed and size, for messages."""
    kind = f"{image.format} " if image.format else ""
    return f"{kind}{stored_mode(image)} {image.width}x{image.height}"


def _transparency_change(expected_alpha: np.ndarray, actual_alpha: np.ndarray, output_format: str):
    """(lost, invented): does only one side have transparent pixels?"""
    threshold = GIF_ALPHA_THRESHOLD if output_format == "GIF" else 255
    reference_transparent = bool((expected_alpha < threshold).any())
    reference_translucent = bool((expected_alpha < 255).any())
    ours_transparent = bool((actual_alpha < 255).any())
    return reference_transparent and not ours_transparent, ours_transparent and not reference_translucent


def _rgba(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGBA"), dtype=np.float64)


def _over(rgba: np.ndarray, background: float) -> np.ndarray:
    alpha = rgba[..., 3:4] / 255.0
    return rgba[..., :3] * alpha + background * (1.0 - alpha)

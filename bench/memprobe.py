"""Peak memory of one thumbnail, in a fresh process (run by bench/run.py and
bench/memory_search.py, one process per file).

    .venv/bin/tox exec -e bench -- python bench/memprobe.py ENGINE FILE [--core PATH] [--as-function]

Imports what ENGINE needs and reads FILE first, then resets the kernel's peak-RSS mark
(/proc/self/clear_refs, "5"), makes one thumbnail and reads the new peak (VmHWM). Prints one
JSON object: RSS before, process peak, and the extra memory the thumbnail took (peak - before),
in KiB; `outcome` (thumbnail, rejected or exception) with the thumbnail's format and size, or
the error (a rejection's `reason` as the function logs it), whose peak is reported too.
`--as-function` first imports handler.py as the function's cold start does (core, settings,
S3 client) and reports that RSS as `baseline_kib`: the process the thumbnail runs in on Lambda.
`--code DIR` imports handler.py and thumbnailer/ from DIR (a copy at some git revision).
A fresh process per measurement keeps allocator caches of earlier files out of it.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def status_kib(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM), in KiB."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE).group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine")
    parser.add_argument("file", type=Path)
    parser.add_argument("--core", type=Path, help="folder of the earlier thumbnailer/ package (ours-before)")
    parser.add_argument(
        "--as-function", action="store_true", help="import handler.py first; its RSS is baseline_kib"
    )
    parser.add_argument("--code", type=Path, help="import handler.py and thumbnailer/ from this directory")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(args.code)] if args.code else []
    sys.path.insert(1 if args.code else 0, str(REPO_ROOT))
    baseline = None
    if args.as_function:
        import handler  # noqa: F401 - the function's init: settings, logger, S3 client

        baseline = status_kib("VmRSS")
    from bench import engines

    if args.engine == "vips":
        reason = engines.vips_unavailable()
        if reason:
            print(json.dumps({"error": reason}))
            return 0
    engine = engines.get(args.engine, core_path=args.core)
    data = args.file.read_bytes()
    engines.warm_imports(args.engine, args.core)
    before = status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    started = time.perf_counter()
    try:
        thumbnail, error = engine(data), None
    except Exception as exc:  # e.g. the guide on 16-bit PNG: reported as a failure, not a crash
        thumbnail, error = None, exc
    elapsed_ms = (time.perf_counter() - started) * 1000
    peak = status_kib("VmHWM")
    result = {
        "rss_before_kib": before,
        "peak_kib": peak,
        "extra_kib": max(0, peak - before),
        "first_call_ms": round(elapsed_ms, 2),
        "source_bytes": len(data),
    }
    if baseline is not None:
        result["baseline_kib"] = baseline
    if error is not None:
        reason = getattr(error, "reason", None)  # thumbnailer's PermanentError: rejected, as logged
        result |= {"outcome": "rejected" if reason else "exception", "reason": reason}
        result["error"] = f"{type(error).__name__}: {error}"
    else:
        result |= {"outcome": "thumbnail", "output": _describe(thumbnail)}
    print(json.dumps(result))
    return 0


def _describe(thumbnail: bytes) -> dict:
    """Format, size and bytes of an encoded thumbnail (after the peak was read)."""
    from PIL import Image

    with Image.open(io.BytesIO(thumbnail)) as image:
        return {"format": image.format, "width": image.width, "height": image.height, "bytes": len(thumbnail)}


if __name__ == "__main__":
    sys.exit(main())

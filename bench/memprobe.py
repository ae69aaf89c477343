"""Peak memory of one thumbnail, in a fresh process (run by bench/run.py, one process per file).

    python bench/memprobe.py ENGINE FILE [--core PATH]

Imports what ENGINE needs and reads FILE first, then resets the kernel's peak-RSS mark
(/proc/self/clear_refs, "5"), makes one thumbnail and reads the new peak (VmHWM). Prints one
JSON object: RSS before, process peak, and the extra memory the thumbnail took (peak - before),
in KiB. A fresh process per measurement keeps allocator caches of earlier files out of it.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--core", type=Path, help="load make_thumbnail from this core.py (ours-before)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO_ROOT))
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
        engine(data)
    except Exception as exc:  # e.g. the guide on 16-bit PNG: reported as a failure, not a crash
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 0
    elapsed_ms = (time.perf_counter() - started) * 1000
    peak = status_kib("VmHWM")
    print(
        json.dumps(
            {
                "rss_before_kib": before,
                "peak_kib": peak,
                "extra_kib": max(0, peak - before),
                "first_call_ms": round(elapsed_ms, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the guide's handler logic vs ours vs libvips, side by side, plus cold start, layer
size and end-to-end latency on LocalStack. Writes build/bench/results.json and results.md.

    make bench                             # full run (about 4 minutes on 2 cores)
    make bench QUICK=1                     # --quick, under 3 minutes: fewer files, rounds and uploads
    make bench BENCH_ARGS="--before HEAD"  # adds "ours before": the thumbnailer package at that revision
    make bench BENCH_ARGS=--no-cloud       # skip LocalStack (e.g. while another run uses its port)
    make bench BENCH_ARGS=--cloud-only     # only LocalStack: the two triggers side by side

(`tox -e bench` runs `python bench/run.py` with these options, after building what it measures.)

Timing runs in this process, interleaved (see bench/timing.py); memory, one fresh process per
file and engine (bench/memprobe.py); cold start, fresh Lambda-like interpreters
(bench/coldstart.py). Progress goes to stderr as JSON lines. Nothing here asserts a time: the
numbers are for people to read.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import coldstart, corpus, engines, report  # noqa: E402
from bench.timing import percentile, time_interleaved  # noqa: E402
from thumbnailer.logs import json_handler  # noqa: E402

OUT_DIR = REPO_ROOT / "build" / "bench"
LAYER_DIR = REPO_ROOT / "build" / "layer"
CLOUD_SAMPLE = "jpeg-baseline-2mp.jpg"
COLD_SAMPLES = ("jpeg-baseline-0.3mp.jpg", "webp-0.3mp.webp")  # first calls after a cold start
COST_BASIS = "jpeg-baseline-12mp.jpg"
MiB_KIB = 1024

LOG = logging.getLogger("bench")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, under 3 minutes")
    parser.add_argument(
        "--before", metavar="REV", help="also time the thumbnailer package as of this git revision"
    )
    parser.add_argument("--rounds", type=int, help="timing rounds (default 11, quick 3)")
    parser.add_argument("--no-cloud", action="store_true", help="skip the LocalStack part")
    parser.add_argument("--cloud-only", action="store_true", help="only the LocalStack part")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold start part")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where results.json/.md go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, handlers=[json_handler()])
    quick = args.quick
    rounds = args.rounds or (3 if quick else 11)
    started, started_at = time.monotonic(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results: dict = {
        "command": "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started": started_at,
        "revision": report.git_revision(),
        "machine": report.machine(),
        "versions": {},
        "settings": {"quick": quick, "rounds": rounds},
        "engines": [],
        "measurements": [],
        "skipped": [],
        "derived": {},
    }
    measurements, skipped = results["measurements"], results["skipped"]

    items = corpus.ensure(quick=quick, limits=not quick)
    LOG.info("corpus ready: %d files in %s", len(items), corpus.CORPUS_DIR)

    before_core = (
        report.export_revision(args.before, ("thumbnailer",), OUT_DIR / "before") if args.before else None
    )
    names = ["guide", "ours"] + (["ours-before"] if before_core else [])
    vips_reason = engines.vips_unavailable()
    if vips_reason:
        skipped.append({"what": "libvips column", "reason": vips_reason})
    else:
        names.append("vips")
    results["engines"] = names
    results["versions"] = engines.versions() | _boto3_version()
    if before_core:
        results["settings"]["before"] = args.before

    if args.cloud_only:
        skipped.append({"what": "timing, memory, cold start, layer size", "reason": "--cloud-only"})
    else:
        timed = [item for item in items if not item.limit]
        measurements += _timing(timed, names, before_core, rounds)
        measurements += _memory(items, names, before_core)
        if args.no_cold_start:
            skipped.append({"what": "cold start", "reason": "--no-cold-start"})
        else:
            measurements += _cold_start(5 if quick else 15, skipped, before_core)
        measurements += _layer(skipped)
    if args.no_cloud:
        skipped.append({"what": "LocalStack end to end", "reason": "--no-cloud"})
    else:
        measurements += _cloud(10 if quick else 20, 20 if quick else 50, skipped)

    results["derived"] = _derived(measurements)
    results["duration_s"] = round(time.monotonic() - started, 1)
    json_path, md_path = report.write(results, args.out)
    LOG.info("wrote %s and %s in %.0f s", json_path, md_path, results["duration_s"])
    return 0


def _boto3_version() -> dict:
    try:
        import boto3

        return {"boto3 (bench)": boto3.__version__}
    except ImportError:
        return {}


def _timing(items: list, names: list[str], before_core: Path | None, rounds: int) -> list[dict]:
    LOG.info("timing %d files x %s, %d rounds", len(items), names, rounds)
    files = [(item.name, item.path.read_bytes()) for item in items]
    kinds = {item.name: item.kind for item in items}
    timings = time_interleaved(
        files, {name: engines.get(name, core_path=before_core) for name in names}, rounds, LOG.info
    )
    guide = {t.file: t.median_ms for t in timings if t.engine == "guide"}
    return [
        report.entry(
            f"time/{t.file}/{t.engine}",
            "ms",
            t.median_ms,
            ratio_to_guide=t.median_ms / guide[t.file] if t.engine != "guide" else None,
            group="time",
            file=t.file,
            kind=kinds[t.file],
            engine=t.engine,
            p95=round(t.p95_ms, 3),
            min=round(t.min_ms, 3),
            n=len(t.samples_ms),
        )
        for t in timings
    ]


def _memory(items: list, names: list[str], before_core: Path | None) -> list[dict]:
    LOG.info("memory: one fresh process per file and engine (%d)", len(items) * len(names))
    found: dict[tuple[str, str], dict] = {}
    for item in items:
        for name in names:
            command = [sys.executable, str(REPO_ROOT / "bench" / "memprobe.py"), name, str(item.path)]
            if before_core:
                command += ["--core", str(before_core)]
            result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
            if result.returncode != 0:
                LOG.warning("memory probe %s %s failed: %s", name, item.name, result.stderr[-500:])
                continue
            found[(item.name, name)] = json.loads(result.stdout.strip().splitlines()[-1])
        LOG.info("memory: %s done", item.name)
    kinds = {item.name: item.kind for item in items}
    out = []
    for (file_name, name), probe in found.items():
        if "error" in probe:
            if name != "vips" or not engines.vips_unavailable():
                out.append(
                    {
                        "name": f"memory/{file_name}/{name}",
                        "unit": "MiB",
                        "median": None,
                        "error": probe["error"],
                        "group": "memory",
                        "file": file_name,
                        "kind": kinds[file_name],
                        "engine": name,
                    }
                )
            continue
        guide = found.get((file_name, "guide"), {}).get("extra_kib")
        extra = probe["extra_kib"] / MiB_KIB
        out.append(
            report.entry(
                f"memory/{file_name}/{name}",
                "MiB",
                extra,
                ratio_to_guide=(probe["extra_kib"] / guide) if guide and name != "guide" else None,
                group="memory",
                file=file_name,
                kind=kinds[file_name],
                engine=name,
                process_peak_mib=round(probe["peak_kib"] / MiB_KIB, 1),
                n=1,
            )
        )
    return out


def _cold_start(samples: int, skipped: list, before_core: Path | None) -> list[dict]:
    reason = coldstart.unavailable()
    if reason:
        skipped.append({"what": "cold start", "reason": reason})
        return []
    LOG.info("cold start: %d fresh interpreters per variant", samples)
    measured = coldstart.measure(
        samples, [corpus.CORPUS_DIR / name for name in COLD_SAMPLES], LOG.info, before_core
    )
    out = []
    guide_total = None
    for variant, runs in measured.items():
        imports = [run["import_ms"] for run in runs]
        calls = [run["first_calls_ms"] for run in runs if run["first_calls_ms"]]
        first_jpeg = statistics.median(c[0] for c in calls) if calls else None
        first_webp = statistics.median(c[1] for c in calls) if calls else None
        total = statistics.median(run["import_ms"] + sum(run["first_calls_ms"]) for run in runs)
        if variant == "guide":
            guide_total = total
        out.append(
            report.entry(
                f"cold start/{variant}/import + client",
                "ms",
                statistics.median(imports),
                group="cold start",
                variant=variant,
                p95=round(percentile(imports, 95), 1),
                first_jpeg_ms=round(first_jpeg, 2) if calls else None,
                then_first_webp_ms=round(first_webp, 2) if calls else None,
                total_ms=round(total, 1) if calls else None,
                rss_mib=round(statistics.median(run["rss_kib"] for run in runs) / MiB_KIB, 1),
                n=len(runs),
            )
        )
    for item in out:
        if guide_total and item.get("total_ms") and item["variant"] != "guide":
            item["ratio_to_guide"] = round(item["total_ms"] / guide_total, 3)
    return out


def _layer(skipped: list) -> list[dict]:
    out = []
    for info_path in sorted(LAYER_DIR.glob("*/build-info.json")):
        info = json.loads(info_path.read_text())
        out.append(
            report.entry(
                f"layer/{info['architecture']}/zip",
                "MiB",
                info["zip_bytes"] / 1024 / 1024,
                group="layer",
                architecture=info["architecture"],
                unzipped_mib=round(info["unzipped_bytes_after_slimming"] / 1024 / 1024, 2),
            )
        )
    if not out:
        skipped.append({"what": "layer size", "reason": "no build/layer/*/build-info.json (make layer)"})
    return out


def _cloud(sequential: int, burst: int, skipped: list) -> list[dict]:
    from bench import cloud

    reason = cloud.unavailable()
    if reason:
        skipped.append({"what": "LocalStack end to end", "reason": reason})
        return []
    LOG.info("LocalStack: %d sequential uploads, then a burst of %d", sequential, burst)
    try:
        measured = cloud.measure(corpus.CORPUS_DIR / CLOUD_SAMPLE, sequential, burst, LOG.info)
    except Exception as exc:  # a broken emulator run is reported, not fatal to the other numbers
        LOG.exception("LocalStack part failed")
        skipped.append(
            {"what": "LocalStack end to end", "reason": f"failed: {type(exc).__name__}: {exc}"[:500]}
        )
        return []
    common = {"group": "localstack", "sample": measured.sample}
    entries = [
        report.entry(
            "localstack/ready", "s", measured.ready_s, label="LocalStack start to healthy", **common
        ),
        report.entry(
            "localstack/remove", "s", measured.remove_s, label="`sls remove`, both stages", **common
        ),
    ]
    for result in measured.triggers:
        seq, mode = result.sequential_ms, {**common, "trigger": result.trigger}
        entries += [
            report.entry("localstack/deploy", "s", result.deploy_s, label="`sls deploy`", **mode),
            report.entry(
                "localstack/first upload to thumbnail",
                "ms",
                result.first_upload_ms,
                label="first upload to thumbnail (cold function)",
                **mode,
            ),
            report.entry(
                "localstack/upload to thumbnail",
                "ms",
                statistics.median(seq),
                p95=round(percentile(seq, 95), 1),
                worst=round(max(seq), 1),
                n=len(seq),
                label=f"upload to thumbnail, {len(seq)} sequential (interleaved), median",
                **mode,
            ),
            report.entry(
                "localstack/burst all thumbnails",
                "s",
                result.burst_done_s,
                n=result.burst_n,
                runs=[round(value, 2) for value in result.burst_s],
                label=f"burst of {result.burst_n} uploads: until every thumbnail exists (mean of 2)",
                **mode,
            ),
            report.entry(
                "localstack/burst throughput",
                "images/s",
                result.burst_per_s,
                n=result.burst_n,
                label=f"burst of {result.burst_n}: throughput",
                **mode,
            ),
            report.entry(
                "localstack/invocations per upload",
                "",
                result.invocations_per_upload,
                n=result.uploads,
                invocations=result.invocations,
                label="function invocations per upload",
                **mode,
            ),
        ]
        entries += [
            report.entry(
                f"localstack/duration {outcome}",
                "ms",
                statistics.median(durations),
                n=len(durations),
                label=f"logged `duration_ms` of a record, `{outcome}`, median",
                **mode,
            )
            for outcome, durations in sorted(result.durations_ms.items())
        ]
    return entries


def _derived(measurements: list[dict]) -> dict:
    """The cost per 1000 thumbnails at the deployed memory size (which `make memory` derives)."""
    derived = {"memory_size_mb": report.deployed_memory_mb()}
    basis = next(
        (
            m
            for m in measurements
            if m.get("group") == "time" and m["engine"] == "ours" and m["file"] == COST_BASIS
        ),
        None,
    )
    if basis and derived["memory_size_mb"]:
        derived["cost"] = report.cost_per_1000(basis["median"], derived["memory_size_mb"])
        derived["cost"]["basis"] = basis["kind"]
    return derived


if __name__ == "__main__":
    sys.exit(main())

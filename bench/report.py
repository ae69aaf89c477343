"""results.json (one entry per measurement) and results.md (the tables the README shows)."""

from __future__ import annotations

import io
import json
import math
import os
import platform
import re
import subprocess
import sys
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ENGINE_TITLES = {"guide": "guide", "ours": "ours", "ours-before": "ours before", "vips": "libvips"}

# Lambda list prices, us-east-1, x86_64 (check https://aws.amazon.com/lambda/pricing/ before quoting).
LAMBDA_GB_SECOND_USD = 0.0000166667
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
S3_GET_USD = 0.0004 / 1000
S3_PUT_USD = 0.005 / 1000
# Lambda gives a function one full vCPU at 1769 MB and a proportional share below.
FULL_VCPU_MB = 1769
MiB = 1024 * 1024
HEADROOM = 1.25
MEMORY_STEP_MB = 64


def machine() -> dict:
    """CPU, cores, memory, kernel and load, so that numbers can be compared with their context."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def export_revision(revision: str, paths: tuple[str, ...], under: Path) -> Path:
    """`paths` as of git `revision`, unpacked once into under/<short commit>/; returns that folder."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", revision], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    target = under / commit
    if not (target / paths[0]).exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit, *paths], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    return target


def git_revision() -> str:
    """The commit the working tree is on, with -dirty when it has changes."""
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True
        )
        return revision + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def entry(name: str, unit: str, median: float, *, ratio_to_guide: float | None = None, **extra) -> dict:
    """One measurement as results.json lists it."""
    item = {"name": name, "unit": unit, "median": round(median, 3)}
    if ratio_to_guide is not None:
        item["ratio_to_guide"] = round(ratio_to_guide, 3)
    item.update({key: value for key, value in extra.items() if value is not None})
    return item


def needed_mib(base_rss_mib: float, source_mib: float, extra_mib: float) -> float:
    """Peak memory of a thumbnail (process + source bytes + its extra) with the headroom added."""
    return (base_rss_mib + source_mib + extra_mib) * HEADROOM


def memory_size(base_rss_mib: float, worst_extra_mib: float, worst_name: str, source_mib: float) -> dict:
    """Lambda memory size from the measured peak on the largest sources the limits allow.

    peak = process after import + client (base) + the source bytes held (up to MAX_SOURCE_BYTES,
    50 MiB) + the largest extra a thumbnail took; +25 % headroom (allocator fragmentation, the
    runtime's own process), rounded up to Lambda's 1 MB step (`minimum_mb`) and to a multiple
    of 64 MB (`memory_size_mb`), a MiB of peak counted as an MB of memory size.
    """
    peak = base_rss_mib + source_mib + worst_extra_mib
    needed = needed_mib(base_rss_mib, source_mib, worst_extra_mib)
    minimum = math.ceil(needed)
    size = math.ceil(needed / MEMORY_STEP_MB) * MEMORY_STEP_MB
    return {
        "memory_size_mb": size,
        "minimum_mb": minimum,
        "peak_mib": round(peak, 1),
        "arithmetic": (
            f"{base_rss_mib:.0f} MiB (process after import + S3 client) + {source_mib:.0f} MiB "
            f"(source bytes, MAX_SOURCE_BYTES) + {worst_extra_mib:.0f} MiB (largest extra: {worst_name}) "
            f"= {peak:.0f} MiB; x {HEADROOM} headroom = {needed:.1f} MiB -> {minimum} MB in Lambda's 1 MB "
            f"steps, {size} MB as the next multiple of {MEMORY_STEP_MB}"
        ),
    }


def deployed_memory_mb() -> int | None:
    """memorySize of the function in serverless.yml (derived by `make memory`)."""
    text = (Path(__file__).resolve().parents[1] / "serverless.yml").read_text()
    match = re.search(r"^\s+memorySize:\s*(\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def cost_per_1000(compute_ms_one_vcpu: float, memory_mb: int) -> dict:
    """Dollars per 1000 thumbnails: Lambda requests and GB-seconds, S3 GET + PUT.

    Below 1769 MB Lambda's CPU share is memory/1769 of a vCPU, so CPU-bound time stretches by
    1769/memory and GB-seconds do not depend on the memory size; S3 latency is not counted.
    """
    stretch = max(1.0, FULL_VCPU_MB / memory_mb)
    duration_s = compute_ms_one_vcpu / 1000 * stretch
    compute = duration_s * memory_mb / 1024 * LAMBDA_GB_SECOND_USD
    per_image = compute + LAMBDA_REQUEST_USD + S3_GET_USD + S3_PUT_USD
    return {
        "compute_ms_one_vcpu": round(compute_ms_one_vcpu, 1),
        "billed_duration_ms_estimate": round(duration_s * 1000, 1),
        "usd_per_1000": round(per_image * 1000, 5),
        "usd_per_1000_lambda_only": round((compute + LAMBDA_REQUEST_USD) * 1000, 5),
        "formula": (
            f"per image: {duration_s * 1000:.0f} ms x {memory_mb / 1024:.3f} GB x ${LAMBDA_GB_SECOND_USD} "
            f"+ ${LAMBDA_REQUEST_USD:.7f} request + ${S3_GET_USD:.7f} GET + ${S3_PUT_USD:.6f} PUT"
        ),
    }


def write(results: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write results.json and results.md into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def _fmt(value: float | None, digits: int = 1, missing: str = "-") -> str:
    if value is None:
        return missing
    return f"{value:.{digits}f}" if value < 1000 else f"{value:.0f}"


def _ratio(value: float | None) -> str:
    return "" if value is None else f" ({value:.2f}x)"


def markdown(results: dict) -> str:
    """The results as markdown tables, with the machine and versions they come from."""
    entries = results["measurements"]
    engines = [e for e in ENGINE_TITLES if e in results["engines"]]
    lines = [
        "# Thumbnail benchmark",
        "",
        f"`{results['command']}` on {results['started']} ({results['duration_s']:.0f} s), "
        f"commit {results['revision']}.",
        "",
        f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
        f"{results['machine']['memory_gib']} GiB, {results['machine']['platform']}, load average at start "
        f"{results['machine']['load_average']}. Versions: Python {results['machine']['python']}, "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items())
        + ".",
        "",
    ]
    by_file: dict[str, dict[str, dict]] = {}
    kinds: dict[str, str] = {}
    for item in entries:
        if item.get("group") in ("time", "memory"):
            by_file.setdefault(item["group"] + "|" + item["file"], {})[item["engine"]] = item
            kinds[item["file"]] = item["kind"]
    files = list(dict.fromkeys(item["file"] for item in entries if item.get("group") == "time"))
    header = "| source | " + " | ".join(ENGINE_TITLES[e] for e in engines) + " |"
    rule = "|---|" + "---:|" * len(engines)
    if files:
        lines += [
            f"## Time per thumbnail (ms, median of {results['settings']['rounds']} interleaved rounds; "
            "ratio to the guide)",
            "",
            header,
            rule,
        ]
        for name in files:
            row = by_file.get(f"time|{name}", {})
            cells = [
                _fmt(row[e]["median"]) + _ratio(row[e].get("ratio_to_guide")) if e in row else "-"
                for e in engines
            ]
            lines.append(f"| {kinds[name]} | " + " | ".join(cells) + " |")
        lines.append("")
    memory_files = list(dict.fromkeys(item["file"] for item in entries if item.get("group") == "memory"))
    if memory_files:
        lines += [
            "## Peak memory per thumbnail (MiB above the process before the call; fresh process per file)",
            "",
            header,
            rule,
        ]
        for name in memory_files:
            row = by_file.get(f"memory|{name}", {})
            cells = [
                _fmt(row[e]["median"], missing="fails") + _ratio(row[e].get("ratio_to_guide"))
                if e in row
                else "-"
                for e in engines
            ]
            lines.append(f"| {kinds[name]} | " + " | ".join(cells) + " |")
        lines.append("")
    cold = [item for item in entries if item.get("group") == "cold start"]
    if cold:
        lines += [
            f"## Cold start (fresh `python3.13 -I -S -B`, Lambda-like sys.path; median of {cold[0]['n']})",
            "",
            "| variant | import + client (ms) | first thumbnail: 0.3 MP JPEG (ms) | then 0.3 MP WebP (ms) "
            "| total (ms) | RSS after import (MiB) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for item in cold:
            lines.append(
                f"| {item['variant']} | {_fmt(item['median'])} | {_fmt(item.get('first_jpeg_ms'))} | "
                f"{_fmt(item.get('then_first_webp_ms'))} | {_fmt(item.get('total_ms'))}"
                f"{_ratio(item.get('ratio_to_guide'))} | {_fmt(item.get('rss_mib'))} |"
            )
        lines.append("")
    layer = [item for item in entries if item.get("group") == "layer"]
    if layer:
        lines += ["## Pillow layer", "", "| architecture | zip (MiB) | unzipped (MiB) |", "|---|---:|---:|"]
        for item in layer:
            lines.append(
                f"| {item['architecture']} | {_fmt(item['median'], 2)} | {_fmt(item['unzipped_mib'], 2)} |"
            )
        lines.append("")
    cloud = [item for item in entries if item.get("group") == "localstack"]
    if cloud:
        lines += _cloud_table(cloud)
    derived = results.get("derived", {})
    if derived:
        lines += ["## Memory size and cost", ""]
        if "memory_size_mb" in derived:
            lines += [
                f"- Memory size: **{derived['memory_size_mb']} MB**, serverless.yml's, derived from the "
                "worst case of `make memory` (build/memory-search/results.md)."
            ]
        if "cost" in derived:
            cost = derived["cost"]
            lines += [
                f"- Cost per 1000 thumbnails: **${cost['usd_per_1000']:.4f}** "
                f"(Lambda alone ${cost['usd_per_1000_lambda_only']:.4f}); {cost['formula']}; compute "
                f"{cost['compute_ms_one_vcpu']} ms on one core ({cost['basis']}), stretched by the CPU "
                f"share to {cost['billed_duration_ms_estimate']} ms. List prices us-east-1 x86_64; S3 "
                "latency not included.",
            ]
        lines.append("")
    if results.get("skipped"):
        lines += ["## Not measured in this run", ""]
        lines += [f"- {item['what']}: {item['reason']}" for item in results["skipped"]]
        lines.append("")
    return "\n".join(lines)


def _cloud_table(cloud: list[dict]) -> list[str]:
    """The LocalStack part: one column per trigger mode, measured side by side."""
    triggers = list(dict.fromkeys(item["trigger"] for item in cloud if "trigger" in item))
    lines = [
        f"## End to end on host-mode LocalStack (`sls deploy`; source {cloud[0]['sample']})",
        "",
        "| measurement | " + " | ".join(f"trigger={trigger}" for trigger in triggers) + " |",
        "|---|" + "---:|" * len(triggers),
    ]

    def cell(item: dict | None) -> str:
        if item is None:
            return ""
        extra = f", p95 {_fmt(item['p95'])}" if "p95" in item else ""
        extra += f", worst {_fmt(item['worst'])}" if "worst" in item else ""
        extra += f" ({item['invocations']} for {item['n']} uploads)" if "invocations" in item else ""
        return f"{_fmt(item['median'], 2 if not item['unit'] else 1)} {item['unit']}{extra}".replace(
            "  ", " "
        )

    for name in dict.fromkeys(item["name"] for item in cloud):
        items = [item for item in cloud if item["name"] == name]
        if "trigger" not in items[0]:
            lines.append(f"| {items[0]['label']} | {cell(items[0])} |" + " |" * (len(triggers) - 1))
            continue
        per = {item["trigger"]: item for item in items}
        lines.append(f"| {items[0]['label']} | " + " | ".join(cell(per.get(t)) for t in triggers) + " |")
    lines.append("")
    return lines

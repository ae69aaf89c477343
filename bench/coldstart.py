"""Cold start: a fresh interpreter imports the handler and creates its S3 client, as Lambda's init.

Each sample is a new `python3.13 -I -S -B` process (harness.interpreters.lambda_python:
THUMBNAILER_LAMBDA_PYTHON overrides it) whose sys.path is laid out like Lambda's:
the function code (handler.py + thumbnailer/ with checked-hash bytecode, as `sls package` ships
them after layer/build.py --function-code), the layer as built (build/layer/x86_64/pillow-layer.zip,
unzipped, with its bytecode) and the runtime's boto3 (build/lambda-runtime/python3.13, with
bytecode, as AWS's runtime has it). `-B` keeps Python from caching what it compiles, as on
Lambda's read-only file system: a module shipped without bytecode is compiled on every cold start.

The variants: the guide's module (import boto3 + PIL.Image, create the client; its Pillow gets
the same layer), ours (import handler), ours with every __pycache__ removed from code and layer
(what shipping bytecode saves), the two halves alone (boto3 + client; thumbnailer.core + Pillow),
and, with --before, ours with the earlier core. After the import each sample also times its
first thumbnails, of a small JPEG and then of a small WebP: Image.open imports plugins lazily,
the first of any format on the first call's clock.
"""

from __future__ import annotations

import compileall
import json
import os
import py_compile
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from harness.interpreters import PythonNotFound, lambda_python  # noqa: E402

WORK_DIR = REPO_ROOT / "build" / "bench" / "coldstart"
LAYER_ZIP = REPO_ROOT / "build" / "layer" / "x86_64" / "pillow-layer.zip"
RUNTIME_DIR = REPO_ROOT / "build" / "lambda-runtime" / "python3.13"

VARIANTS = {
    "guide": "import boto3\nfrom PIL import Image\nimport io\ns3 = boto3.client('s3')\n",
    "ours": "import handler\n",
    "ours before": "import handler\n",
    "ours, no bytecode": "import handler\n",
    "boto3 + client only": "import boto3\nfrom botocore.config import Config\ns3 = boto3.client('s3')\n",
    "thumbnailer.core only": "import thumbnailer.core\n",
}
FIRST_CALL = {
    "guide": (
        "image = Image.open(io.BytesIO(data))\nimage.thumbnail((128, 128))\n"
        "out = io.BytesIO()\nimage.save(out, format=image.format)\n"
    ),
    "ours": "sys.modules['thumbnailer.core'].make_thumbnail(data)\n",
    "ours before": "sys.modules['thumbnailer.core'].make_thumbnail(data)\n",
    "ours, no bytecode": "sys.modules['thumbnailer.core'].make_thumbnail(data)\n",
}

_CHILD = """
import time
_started = time.perf_counter()
import sys
sys.path[:0] = {paths!r}
{code}
_imported = time.perf_counter()
import re
_rss = int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
_calls = []
if {first_call!r}:
    for _path in {samples!r}:
        data = open(_path, "rb").read()
        _t = time.perf_counter()
        exec({first_call!r})
        _calls.append((time.perf_counter() - _t) * 1000)
import json
print(json.dumps({{"import_ms": (_imported - _started) * 1000, "rss_kib": _rss, "first_calls_ms": _calls}}))
"""


@dataclass(frozen=True)
class Layout:
    """Directories of one emulated /var/task + /opt/python + /var/runtime."""

    task: Path
    layer: Path
    runtime: Path


def unavailable() -> str | None:
    """Why cold start cannot be measured here, or None."""
    try:
        lambda_python()
    except PythonNotFound as exc:
        return str(exc)
    if not LAYER_ZIP.exists():
        return f"{LAYER_ZIP.relative_to(REPO_ROOT)} not built (make layer)"
    if not (RUNTIME_DIR / "boto3").is_dir():
        return f"{RUNTIME_DIR.relative_to(REPO_ROOT)} missing (python localstack/server.py install)"
    return None


def prepare(before_core: Path | None = None) -> dict[str, Layout]:
    """The function code and the layer as shipped, without any bytecode, and with the old core."""
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    layouts = {}
    for name in ("as-shipped", "no-bytecode", "before") if before_core else ("as-shipped", "no-bytecode"):
        base = WORK_DIR / name
        task = base / "task"
        task.mkdir(parents=True)
        shutil.copy2(REPO_ROOT / "handler.py", task / "handler.py")
        package = before_core / "thumbnailer" if name == "before" else REPO_ROOT / "thumbnailer"
        shutil.copytree(package, task / "thumbnailer", ignore=shutil.ignore_patterns("__pycache__"))
        with zipfile.ZipFile(LAYER_ZIP) as archive:
            archive.extractall(base / "opt")
        if name == "no-bytecode":
            for cache in sorted(base.rglob("__pycache__")):
                shutil.rmtree(cache)
        else:
            checked_hash = py_compile.PycInvalidationMode.CHECKED_HASH  # as layer/build.py --function-code
            compileall.compile_dir(task, quiet=1, invalidation_mode=checked_hash)
        layouts[name] = Layout(task, base / "opt" / "python", RUNTIME_DIR)
    return layouts


def child_env() -> dict[str, str]:
    """What Lambda sets that boto3 and the settings read; fake credentials, no network."""
    keep = {key: os.environ[key] for key in ("PATH", "LANG", "HOME") if key in os.environ}
    return {
        **keep,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "THUMBNAIL_PREFIX": "thumbnails/",
        "LOG_LEVEL": "INFO",
    }


def sample(python: Path | str, variant: str, layout: Layout, sample_files: list[Path]) -> dict:
    """One fresh `python` interpreter running `variant`; returns its JSON line."""
    code = _CHILD.format(
        paths=[str(layout.task), str(layout.layer), str(layout.runtime)],
        code=VARIANTS[variant],
        first_call=FIRST_CALL.get(variant, ""),
        samples=[str(path) for path in sample_files],
    )
    result = subprocess.run(
        [python, "-I", "-S", "-B", "-c", code],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=WORK_DIR,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cold start sample {variant!r} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(
    samples: int, sample_files: list[Path], progress=lambda _: None, before_core: Path | None = None
) -> dict[str, list[dict]]:
    """`samples` fresh processes per variant, interleaved, after one discarded warm-up each."""
    layouts = prepare(before_core)
    python = lambda_python()  # once: resolving it starts an interpreter, which would add noise
    variants = [v for v in VARIANTS if before_core or v != "ours before"]
    results: dict[str, list[dict]] = {variant: [] for variant in variants}
    for round_index in range(samples + 1):
        for variant in variants:
            layout = layouts[
                {"ours, no bytecode": "no-bytecode", "ours before": "before"}.get(variant, "as-shipped")
            ]
            measured = sample(python, variant, layout, sample_files)
            if round_index:  # the first round only warms the page cache
                results[variant].append(measured)
        progress(f"cold start round {round_index}/{samples} done")
    return results


if __name__ == "__main__":
    reason = unavailable()
    if reason:
        sys.exit(reason)
    corpus = REPO_ROOT / "build" / "bench" / "corpus"
    print(json.dumps(measure(3, [corpus / "jpeg-baseline-0.3mp.jpg", corpus / "webp-0.3mp.webp"]), indent=1))

"""Run the product locally: LocalStack, `sls deploy --stage local`, uploads, thumbnails, a contact sheet.

    make demo ARGS="FOLDER --keep"      # python -m harness.demo [FOLDER] [--keep] [--out build/demo]

Uploads every file of FOLDER (default: fixtures/images), waits for each thumbnail with a progress
line, downloads the thumbnails, prints a table and writes an HTML contact sheet. Without --keep it
removes the stack and stops LocalStack at the end; with --keep both stay up for your own uploads.
"""

import argparse
import html
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from harness import REPO_ROOT, localstack, stack
from harness.function_log import FunctionLog
from harness.thumbnails import thumbnail_key, upload_all, wait_for_thumbnails

DEFAULT_FOLDER = REPO_ROOT / "fixtures" / "images"
DEFAULT_OUT = REPO_ROOT / "build" / "demo"
WAIT_S = 60.0
POLL_S = 0.1


@dataclass
class Upload:
    """One uploaded file and, once it arrived, its thumbnail."""

    path: Path
    key: str
    source_bytes: int
    uploaded_at: float
    thumbnail_bytes: int | None = None
    content_type: str | None = None
    latency_s: float | None = None
    rejected: str | None = None


def upload(s3, bucket: str, files: list[Path], folder: str) -> list[Upload]:
    """Upload each file under `folder` and remember when each upload returned."""
    bodies = {f"{folder}/{path.name}": path.read_bytes() for path in files}
    uploaded_at = upload_all(s3, bucket, bodies)
    return [
        Upload(path, key, len(bodies[key]), uploaded_at[key]) for path, key in zip(files, bodies, strict=True)
    ]


def wait(s3, log: FunctionLog, bucket: str, uploads: list[Upload]) -> None:
    """Wait until every upload has a thumbnail or a logged rejection, or WAIT_S pass; print progress."""
    shown = [-1]

    def progress(settled: int, total: int) -> None:
        if settled != shown[0]:
            print(f"  {settled}/{total} settled", flush=True)
            shown[0] = settled

    settled = wait_for_thumbnails(
        s3,
        bucket,
        [u.key for u in uploads],
        deadline_s=WAIT_S,
        log=log,
        poll_s=POLL_S,
        progress=progress,
        require_all=False,
    )
    for u in uploads:
        if u.key in settled.thumbnails:
            arrival = settled.thumbnails[u.key]
            u.thumbnail_bytes, u.latency_s = arrival.size, arrival.seen_at - u.uploaded_at
        u.rejected = settled.rejected.get(u.key)
    if settled.pending:
        print(f"  {len(settled.pending)} neither got a thumbnail nor were rejected within {WAIT_S:.0f} s")


def download(s3, bucket: str, uploads: list[Upload], out: Path) -> None:
    """Copy sources and thumbnails into `out` for the contact sheet."""
    for sub in ("sources", "thumbnails"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for upload in uploads:
        shutil.copyfile(upload.path, out / "sources" / upload.path.name)
        if upload.thumbnail_bytes is not None:
            response = s3.get_object(Bucket=bucket, Key=thumbnail_key(upload.key))
            upload.content_type = response["ContentType"]
            (out / "thumbnails" / upload.path.name).write_bytes(response["Body"].read())


def print_table(uploads: list[Upload]) -> None:
    """Key, source and thumbnail size, content type, upload-to-thumbnail latency."""
    print(f"\n{'key':<44} {'source B':>9} {'thumb B':>8} {'type':<11} {'latency':>8}")
    for u in uploads:
        thumb = f"{u.thumbnail_bytes}" if u.thumbnail_bytes is not None else "-"
        latency = f"{u.latency_s * 1000:.0f} ms" if u.latency_s is not None else "-"
        outcome = f"rejected: {u.rejected}" if u.rejected else ""
        content_type = u.content_type or "-"
        print(f"{u.key[:44]:<44} {u.source_bytes:>9} {thumb:>8} {content_type:<11} {latency:>8}  {outcome}")
    latencies = sorted(u.latency_s for u in uploads if u.latency_s is not None)
    if latencies:
        print(
            f"\n{len(latencies)}/{len(uploads)} thumbnails; latency median "
            f"{latencies[len(latencies) // 2] * 1000:.0f} ms, worst {latencies[-1] * 1000:.0f} ms "
            f"(includes the {POLL_S * 1000:.0f} ms polling interval)"
        )


def write_contact_sheet(uploads: list[Upload], out: Path) -> Path:
    """An HTML page with each source beside its thumbnail."""
    rows = []
    for u in uploads:
        name = quote(u.path.name)
        thumb = (
            f'<img src="thumbnails/{name}" alt="thumbnail">'
            if u.thumbnail_bytes is not None
            else f"<em>no thumbnail: {html.escape(u.rejected or 'none arrived')}</em>"
        )
        rows.append(
            f"<tr><td>{html.escape(u.key)}<br><small>{u.source_bytes} B</small></td>"
            f'<td><img class="src" src="sources/{name}" alt="source"></td><td>{thumb}<br>'
            f"<small>{u.thumbnail_bytes or '-'} B {html.escape(u.content_type or '')}</small></td></tr>"
        )
    page = out / "index.html"
    page.write_text(
        "<!doctype html><meta charset=utf-8><title>thumbnailer demo</title><style>"
        "body{font-family:sans-serif}td{border-bottom:1px solid #ccc;padding:6px;vertical-align:top}"
        "img.src{max-width:320px;max-height:240px}"
        "img{background:repeating-conic-gradient(#ddd 0 25%,#fff 0 50%) 0 0/16px 16px}</style>"
        "<h1>Sources and their thumbnails</h1><table><tr><th>key</th><th>source</th><th>thumbnail</th></tr>"
        + "".join(rows)
        + "</table>",
        encoding="utf-8",
    )
    return page


def keep_instructions(endpoint: str, bucket: str) -> str:
    """How to use the stack that --keep left running."""
    aws = (
        f"AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws --region us-east-1 --endpoint-url {endpoint}"
    )
    return (
        "\nkept running. Upload your own image and fetch its thumbnail with:\n"
        f"  {aws} s3 cp photo.jpg s3://{bucket}/\n"
        f"  {aws} s3 cp s3://{bucket}/thumbnails/photo.jpg .\n"
        "stop with: make stop"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of `make demo`."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER, help="images to upload")
    parser.add_argument("--keep", action="store_true", help="leave the stack and LocalStack running")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where to write thumbnails and the sheet"
    )
    args = parser.parse_args(argv)
    files = sorted(p for p in args.folder.iterdir() if p.is_file() and not p.name.endswith(".md"))
    if not files:
        parser.error(f"{args.folder} holds no files")

    server = localstack.server()
    started = time.monotonic()
    handle = server.start()
    print(f"LocalStack ready at {handle.endpoint} after {time.monotonic() - started:.1f} s")
    deployed = None
    try:
        started = time.monotonic()
        deployed = stack.deploy(handle.endpoint)
        seconds = time.monotonic() - started
        print(f"deployed {deployed.function_name} (bucket {deployed.bucket}) in {seconds:.1f} s")
        s3 = localstack.client("s3", handle.endpoint)
        folder = f"demo-{uuid.uuid4().hex[:8]}"
        uploads = upload(s3, deployed.bucket, files, folder)
        print(f"uploaded {len(uploads)} files under s3://{deployed.bucket}/{folder}/")
        log = FunctionLog(localstack.client("logs", handle.endpoint), deployed.log_group)
        wait(s3, log, deployed.bucket, uploads)
        shutil.rmtree(args.out, ignore_errors=True)
        download(s3, deployed.bucket, uploads, args.out)
        print_table(uploads)
        print(f"\ncontact sheet: {write_contact_sheet(uploads, args.out)}")
    finally:
        if args.keep:
            if deployed:
                print(keep_instructions(handle.endpoint, deployed.bucket))
        else:
            if deployed:
                stack.remove(handle.endpoint, deployed)
            if handle.owned:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

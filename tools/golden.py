"""Accept and review the golden thumbnails in fixtures/golden/.

    .venv/bin/python tools/golden.py accept [NAMES...]       # goldens := the current core's output
    .venv/bin/python tools/golden.py accept --from-review [NAMES...]
    .venv/bin/python tools/golden.py report [NAMES...]       # review report, no pytest needed

`accept` regenerates goldens by running `make_thumbnail` on fixtures/images/<name> with its
default arguments: a golden is by definition what the core writes, so accepting does not depend
on what an earlier test run left in build/ and is reproducible. With no names every valid
fixture is regenerated and goldens of images that are no longer valid fixtures are removed;
with names only those files are touched.

`accept --from-review` copies the new thumbnails the last failing run saved in
build/golden-review/new/ instead (only the failed ones, or the named ones). Use it when the
thumbnails to accept did not come from the local core, e.g. from the deployed function.

`report` compares the current core with the goldens and writes build/golden-review/index.html
(GOLDEN_REVIEW_DIR overrides); the exit status is 1 when anything differs.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fixtures import VALID_IMAGES, image_bytes
from tests.support.golden import (
    GOLDEN_DIR,
    compare_with_golden,
    entries_of_last_run,
    record,
    review_dir,
)
from thumbnailer import make_thumbnail

# Goldens are committed; a thumbnail of 128 px should never need more than this.
MAX_GOLDEN_BYTES = 10 * 1024
# Files in fixtures/golden/ that are not goldens.
NOT_GOLDENS = {"README.md"}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
        parser.error(f"not valid fixture images: {', '.join(unknown)} (see tests/support/fixtures.py)")
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

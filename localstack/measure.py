"""Measure host-mode LocalStack: start-to-ready, cold and warm invoke latency (medians).

Run from the repository root in the integration test environment (boto3, the harness):

    .venv/bin/tox exec -e integration -- python localstack/measure.py --rounds 5 --warm 20

Starts (and afterwards stops) its own LocalStack unless one is already running; prints JSON.
"""

import argparse
import io
import json
import statistics
import sys
import time
import uuid
import zipfile
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from harness import localstack

HANDLER = "def lambda_handler(event, context):\n    return {'ok': True}\n"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", HANDLER)
    return buffer.getvalue()


def _timed_invoke(client, name: str) -> float:
    started = time.perf_counter()
    response = client.invoke(FunctionName=name, Payload=b"{}")
    response["Payload"].read()
    if "FunctionError" in response:
        raise RuntimeError(f"{name} failed")
    return (time.perf_counter() - started) * 1000


def main() -> None:
    """Print start-to-ready seconds and cold/warm invoke medians in ms."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="cold starts (one new function each)")
    parser.add_argument("--warm", type=int, default=20, help="warm invokes")
    args = parser.parse_args()
    server = localstack.server()
    was_running = server.status()["healthy"]
    started = time.monotonic()
    with server.localstack_running() as endpoint:
        ready_s = time.monotonic() - started
        client = localstack.client("lambda", endpoint)
        code = _zip()
        names, cold = [], []
        try:
            for _ in range(args.rounds):
                name = f"measure-{uuid.uuid4().hex[:8]}"
                client.create_function(
                    FunctionName=name,
                    Runtime="python3.13",
                    Handler="handler.lambda_handler",
                    Role="arn:aws:iam::000000000000:role/r",
                    Code={"ZipFile": code},
                )
                names.append(name)
                client.get_waiter("function_active_v2").wait(FunctionName=name)
                cold.append(_timed_invoke(client, name))
            warm = [_timed_invoke(client, names[0]) for _ in range(args.warm)]
        finally:
            for name in names:
                client.delete_function(FunctionName=name)
    print(
        json.dumps(
            {
                "start_to_ready_s": None if was_running else round(ready_s, 2),
                "cold_invoke_ms_median": round(statistics.median(cold), 1),
                "cold_invoke_ms": [round(x) for x in cold],
                "warm_invoke_ms_median": round(statistics.median(warm), 1),
                "warm_invoke_ms_min_max": [round(min(warm)), round(max(warm))],
            }
        )
    )


if __name__ == "__main__":
    main()

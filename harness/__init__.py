"""The local harness: what `make demo`, the benchmark and the tests share to run the product here.

| module | what |
|---|---|
| `localstack` | host-mode LocalStack (localstack/server.py, loaded by path) and boto3 clients bound to it |
| `stack` | deploy, describe and remove the stack on LocalStack with the real `sls` |
| `thumbnails` | upload and wait, against a deadline, for thumbnails (or logged rejections) |
| `function_log` | the deployed function's CloudWatch log: its JSON lines and START lines |
| `waiting` | `wait_until`: the one polling loop, bounded by a deadline |
| `lambda_context` | an AWS-shaped Lambda context for calling the handler in-process |
| `interpreters` | the Python that stands in for Lambda's runtime (.python-version, no fixed path) |
| `versions` | the pins read where they are kept: .python-version, layer/requirements.txt |
| `fixtures` | the catalog of fixtures/images and fixtures/events |
| `golden` | the goldens: tolerant comparison, review report, `accept` and `report` commands |
| `corpus` | fetch the pinned third-party image corpus (`make corpus`) |
| `demo` | `make demo` |

Nothing here imports `tests`; the operator commands (ops/) do not import the harness.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

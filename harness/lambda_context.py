"""An AWS-shaped Lambda context, for calling `handler.lambda_handler` in-process."""

import time
from dataclasses import dataclass, field

REQUEST_ID = "11111111-2222-3333-4444-555555555555"


@dataclass
class LambdaContext:
    """What Lambda's Python runtime passes the handler, with `timeout_s` left from its creation on.

    The defaults are the deployed function's: 896 MB and a 30 s timeout (serverless.yml).
    """

    function_name: str = "thumbnailer-test-thumbnail"
    aws_request_id: str = REQUEST_ID
    timeout_s: float = 30.0
    memory_limit_in_mb: int = 896
    region: str = "us-east-1"
    account_id: str = "123456789012"
    function_version: str = "$LATEST"
    _ends_at: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ends_at = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        """The ARN the invocation named (unqualified, as S3 notifications invoke it)."""
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"2026/01/01/[{self.function_version}]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the timeout, never negative."""
        return max(0, int((self._ends_at - time.monotonic()) * 1000))

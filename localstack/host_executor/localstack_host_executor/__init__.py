"""LocalStack runtime executor that runs Python Lambda functions as processes on the host.

Select it with ``LAMBDA_RUNTIME_EXECUTOR=host``. See ``executor.py`` for the LocalStack side and
``bootstrap.py`` for the runtime that runs inside each execution environment.
"""

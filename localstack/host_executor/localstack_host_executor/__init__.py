"""LocalStack runtime executor that runs Python Lambda functions as confined processes on the host.

Select it with ``LAMBDA_RUNTIME_EXECUTOR=host``. ``executor.py`` plays the Lambda platform,
``runtime_api.py`` serves each runtime process's Runtime API, ``launcher.py`` is the first code of
each environment process (sandbox, then AWS's ``awslambdaric``), ``sandbox.py`` finds what the host
offers (memory cgroups, mount namespaces), ``output.py`` turns the process's output into log lines.
"""

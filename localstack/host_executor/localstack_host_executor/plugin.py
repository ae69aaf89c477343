"""plux plugin that registers the host executor under ``localstack.lambda.runtime_executor``."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class HostRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    """Plugin named ``host``: select it with ``LAMBDA_RUNTIME_EXECUTOR=host``."""

    name = "host"

    def load(self, *args, **kwargs):
        """Import lazily so that a broken import shows up in the log when the executor is used."""
        from localstack_host_executor.executor import HostRuntimeExecutor

        return HostRuntimeExecutor

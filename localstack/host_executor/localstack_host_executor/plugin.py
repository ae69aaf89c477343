"""plux plugin that registers the host executor under ``localstack.lambda.runtime_executor``."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


def pass_client_context_to_host_executor() -> None:
    """Hand each invocation's ClientContext to the host executor before LocalStack invokes it.

    LocalStack's invoke payload for executors has no client context (its Docker runtime drops it);
    AWS's Runtime API passes it as ``Lambda-Runtime-Client-Context``.
    """
    from localstack.services.lambda_.invocation.execution_environment import ExecutionEnvironment

    from localstack_host_executor.executor import HostRuntimeExecutor

    original = ExecutionEnvironment.invoke
    if getattr(original, "passes_client_context", False):
        return

    def invoke(self, invocation):
        if isinstance(self.runtime_executor, HostRuntimeExecutor):
            self.runtime_executor.client_context = invocation.client_context
        return original(self, invocation)

    invoke.passes_client_context = True
    ExecutionEnvironment.invoke = invoke


class HostRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    """Plugin named ``host``: select it with ``LAMBDA_RUNTIME_EXECUTOR=host``."""

    name = "host"

    def load(self, *args, **kwargs):
        """Import lazily so that a broken import shows up in the log when the executor is used."""
        from localstack_host_executor.executor import HostRuntimeExecutor

        pass_client_context_to_host_executor()
        return HostRuntimeExecutor

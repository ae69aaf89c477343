"""The host executor's probe of the host (localstack/host_executor: standard library only)."""

import importlib.util
import sys
import threading
import time

import pytest

from harness import REPO_ROOT

SANDBOX = REPO_ROOT / "localstack" / "host_executor" / "localstack_host_executor" / "sandbox.py"


@pytest.fixture
def sandbox(monkeypatch):
    """A fresh copy of sandbox.py (its probe caches empty)."""
    spec = importlib.util.spec_from_file_location("host_sandbox_under_test", SANDBOX)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def slow_probe(interpreter, work_dir):
    time.sleep(0.05)  # the mount probe starts a process: the other environments arrive meanwhile
    return False, "directory"


def test_environments_starting_together_keep_their_cgroups(sandbox, monkeypatch, tmp_path):
    """Two environments of a fresh LocalStack start at once: the second probe must not sweep away,
    as stale, the cgroup the first has just created (it did: Runtime.ExitError on a burst)."""
    parent = tmp_path / "localstack-lambda"
    parent.mkdir()
    (parent / "left-by-a-killed-localstack").mkdir()
    monkeypatch.setattr(sandbox, "_find_memory_cgroup", lambda: ("cgroup1", parent))
    monkeypatch.setattr(sandbox, "_probe_file_system", slow_probe)
    created, errors = [], []

    def start_environment(index: int) -> None:
        time.sleep(0.02 * index)  # arriving while the first probe still runs
        try:
            capabilities = sandbox.host_capabilities("python3.13", tmp_path)
            cgroup = parent / f"env-{index}"
            cgroup.mkdir()
            created.append(cgroup)
            assert capabilities.memory_cgroup_parent == str(parent)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start_environment, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(path.name for path in parent.iterdir()) == [f"env-{i}" for i in range(4)]

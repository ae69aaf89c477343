"""What the host offers to confine an execution environment, and the per-environment resources.

Found once per LocalStack process and interpreter (``host_capabilities()``, logged as JSON):

- memory limit: a cgroup v2 child with ``memory.max``, else a cgroup v1 child of the memory
  controller with ``memory.limit_in_bytes``, else polling the process's RSS (``VmRSS``, every
  50 ms) and killing it above the limit. The kernel's OOM killer (cgroups) or the poller sends
  SIGKILL, which is what AWS's sandbox does;
- file system: a private mount namespace (root only) for read-only ``/var/task``, ``/opt``,
  ``/var/runtime`` and a private ``/tmp``: an ext4 image of the ephemeral-storage size on a loop
  device (its page cache is reclaimable, like a disk's), else a size-limited tmpfs (its pages count
  against the memory limit), else a private ``TMPDIR`` without a size limit.
"""

import contextlib
import dataclasses
import functools
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

LOG = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("launcher.py")
ENV_MEMORY_LIMIT = "LAMBDA_HOST_MEMORY_LIMIT"
ENV_ISOLATION = "LAMBDA_HOST_ISOLATION"
MOUNT_POINTS = ("/var/task", "/var/runtime", "/opt")
CGROUP_GROUP_NAME = "localstack-lambda"
RSS_POLL_INTERVAL_S = 0.05
# ext4 keeps under 2 % for its own metadata; this makes the free space about the size asked for.
EXT4_OVERHEAD = 1.018


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """How environments are confined on this host."""

    memory_limit: str  # "cgroup2", "cgroup1" or "rss-poll"
    memory_cgroup_parent: str | None
    isolated_file_system: bool  # private mount namespace with read-only binds
    tmp: str  # "ext4-image", "tmpfs" or "directory"

    def as_dict(self) -> dict:
        """JSON-friendly form, for the log line."""
        return dataclasses.asdict(self)


def _mountinfo() -> list[tuple[str, str, str]]:
    """(mount point, file system type, super options) of each mount of this process."""
    mounts = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            separator = fields.index("-")
            mounts.append((fields[4], fields[separator + 1], fields[separator + 3]))
    return mounts


def _own_cgroups() -> dict[str, str]:
    """Controller (``""`` for v2) -> this process's cgroup path."""
    paths = {}
    with open("/proc/self/cgroup", encoding="utf-8") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _try_memory_cgroup(parent: Path, limit_file: str) -> bool:
    """True if a child of ``parent`` can be created and limited (the probe child is removed)."""
    probe = parent / f"probe-{os.getpid()}"
    try:
        parent.mkdir(exist_ok=True)
        probe.mkdir(exist_ok=True)
        (probe / limit_file).write_text(str(64 * 1024 * 1024))
        return True
    except OSError as e:
        LOG.debug("Memory cgroup under %s not usable: %s", parent, e)
        return False
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


def _find_memory_cgroup() -> tuple[str, Path | None]:
    own = _own_cgroups()
    mounts = _mountinfo()
    if "" in own:
        for mount_point, fs_type, _ in mounts:
            if fs_type != "cgroup2":
                continue
            base = Path(mount_point) / own[""].lstrip("/")
            try:
                controllers = (base / "cgroup.controllers").read_text().split()
                if "memory" in controllers and "memory" not in (base / "cgroup.subtree_control").read_text():
                    (base / "cgroup.subtree_control").write_text("+memory")
            except OSError as e:
                LOG.debug("cgroup v2 memory controller not available in %s: %s", base, e)
                continue
            parent = base / CGROUP_GROUP_NAME
            try:
                parent.mkdir(exist_ok=True)
                (parent / "cgroup.subtree_control").write_text("+memory")
            except OSError as e:
                LOG.debug("cgroup v2 memory controller not delegable below %s: %s", base, e)
                continue
            if _try_memory_cgroup(parent, "memory.max"):
                return "cgroup2", parent
    if "memory" in own:
        for mount_point, fs_type, options in mounts:
            if fs_type == "cgroup" and "memory" in options.split(","):
                parent = Path(mount_point) / own["memory"].lstrip("/") / CGROUP_GROUP_NAME
                if _try_memory_cgroup(parent, "memory.limit_in_bytes"):
                    return "cgroup1", parent
    return "rss-poll", None


def _remove_stale_cgroups(parent: Path) -> None:
    """Remove environment cgroups a killed LocalStack left behind (rmdir fails on busy ones)."""
    for child in parent.iterdir():
        if child.is_dir():
            with contextlib.suppress(OSError):
                child.rmdir()


def make_ext4_image(path: Path, size_mb: int) -> None:
    """Create a sparse file holding an empty ext4 file system of about ``size_mb`` MB usable space."""
    path.unlink(missing_ok=True)
    with open(path, "wb") as f:
        f.truncate(int(size_mb * EXT4_OVERHEAD) * 1024 * 1024)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "root_owner=0:0", str(path)],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


def _probe_file_system(interpreter: str, work_dir: Path) -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "directory"
    try:
        for mount_point in MOUNT_POINTS:
            os.makedirs(mount_point, exist_ok=True)
    except OSError as e:
        LOG.info("Cannot create mount points %s: %s", MOUNT_POINTS, e)
        return False, "directory"
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="probe-") as probe_dir:
        for name in ("read-only", "image", "tmpfs"):
            os.mkdir(os.path.join(probe_dir, name))
        try:
            make_ext4_image(Path(probe_dir) / "tmp.img", 8)
        except (OSError, subprocess.CalledProcessError) as e:
            LOG.info("No ext4 image for /tmp (mkfs.ext4 failed: %s)", e)
        result = subprocess.run(
            [interpreter, "-I", "-S", str(LAUNCHER), "--probe", probe_dir],
            capture_output=True,
            text=True,
            timeout=30,
        )
    try:
        found = json.loads(result.stdout)
    except ValueError:
        LOG.info("Mount probe failed: %s", result.stderr[-2000:])
        return False, "directory"
    if not (found["namespace"] and found["read_only_bind"] and found["read_only_root"]):
        return False, "directory"
    if found["ext4_image"]:
        return True, "ext4-image"
    return True, "tmpfs" if found["tmpfs"] else "directory"


# Environments start on several threads at once: the first ones must wait for one probe, or a
# second probe's stale-cgroup sweep removes the cgroup a first environment is about to join.
_PROBE_LOCK = threading.Lock()


def host_capabilities(interpreter: str, work_dir: Path) -> Capabilities:
    """Probe the host once per interpreter: which memory limit and file system isolation
    environments get. ``LAMBDA_HOST_MEMORY_LIMIT=rss-poll`` and ``LAMBDA_HOST_ISOLATION=off``
    force the fallbacks.
    """
    with _PROBE_LOCK:
        return _capabilities(interpreter, work_dir)


@functools.cache
def _capabilities(interpreter: str, work_dir: Path) -> Capabilities:
    memory_limit, parent = _memory_limit()
    isolated, tmp = False, "directory"
    if os.environ.get(ENV_ISOLATION) != "off":
        isolated, tmp = _probe_file_system(interpreter, work_dir)
    if not isolated:
        tmp = "directory"
    capabilities = Capabilities(memory_limit, str(parent) if parent else None, isolated, tmp)
    LOG.info("Host executor sandbox: %s", json.dumps(capabilities.as_dict()))
    return capabilities


@functools.cache
def _memory_limit() -> tuple[str, Path | None]:
    """The memory limit mechanism, found once; the cgroups a killed LocalStack left are removed
    then, before any environment of this LocalStack exists."""
    if os.environ.get(ENV_MEMORY_LIMIT) == "rss-poll":
        return "rss-poll", None
    memory_limit, parent = _find_memory_cgroup()
    if parent is not None:
        _remove_stale_cgroups(parent)
    return memory_limit, parent


class MemoryLimit:
    """One environment's memory limit: a cgroup, or an RSS poller when no cgroup is available."""

    def __init__(self, capabilities: Capabilities, name: str, limit_mb: int):
        self.mechanism = capabilities.memory_limit
        self.limit_bytes = limit_mb * 1024 * 1024
        self.cgroup: Path | None = None
        self._rss_killed: set[int] = set()
        if capabilities.memory_cgroup_parent:
            self.cgroup = Path(capabilities.memory_cgroup_parent) / name
            self.cgroup.mkdir(exist_ok=True)
            if self.mechanism == "cgroup2":
                (self.cgroup / "memory.max").write_text(str(self.limit_bytes))
                if (self.cgroup / "memory.swap.max").exists():
                    (self.cgroup / "memory.swap.max").write_text("0")
            else:
                (self.cgroup / "memory.limit_in_bytes").write_text(str(self.limit_bytes))
                # The launcher joins after the interpreter started: bring its pages along.
                with contextlib.suppress(OSError):
                    (self.cgroup / "memory.move_charge_at_immigrate").write_text("3")
                memsw = self.cgroup / "memory.memsw.limit_in_bytes"
                if memsw.exists():
                    memsw.write_text(str(self.limit_bytes))

    @property
    def procs_file(self) -> str | None:
        """The file a process writes its pid to, to join the cgroup."""
        return str(self.cgroup / "cgroup.procs") if self.cgroup else None

    def oom_kills(self) -> int:
        """How many processes of this environment the kernel's OOM killer has killed so far."""
        if self.cgroup is None:
            return len(self._rss_killed)
        name = "memory.events" if self.mechanism == "cgroup2" else "memory.oom_control"
        try:
            for line in (self.cgroup / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except OSError:
            pass
        return 0

    def was_killed(self, pid: int, oom_kills_before: int) -> bool:
        """True if the process ``pid`` died because of this limit."""
        return pid in self._rss_killed or (self.cgroup is not None and self.oom_kills() > oom_kills_before)

    def peak_mb(self, pid: int | None) -> int:
        """Peak memory of the environment in MB: the cgroup's peak or the process's VmHWM if higher.

        (Pages of shared libraries that other processes loaded first count in the VmHWM only.)
        """
        peak = _status_kb(pid, "VmHWM") * 1024 if pid else 0
        if self.cgroup is not None:
            name = "memory.peak" if self.mechanism == "cgroup2" else "memory.max_usage_in_bytes"
            with contextlib.suppress(OSError, ValueError):
                peak = max(peak, int((self.cgroup / name).read_text()))
        return peak // (1024 * 1024)

    def watch(self, process: subprocess.Popen) -> None:
        """Without a cgroup: kill ``process`` (its process group) when its RSS passes the limit."""
        if self.cgroup is not None:
            return
        threading.Thread(
            target=self._poll_rss, args=(process,), name=f"rss-{process.pid}", daemon=True
        ).start()

    def _poll_rss(self, process: subprocess.Popen) -> None:
        while process.poll() is None:
            if _status_kb(process.pid, "VmRSS") * 1024 > self.limit_bytes:
                self._rss_killed.add(process.pid)
                kill_group(process)
                return
            time.sleep(RSS_POLL_INTERVAL_S)

    def remove(self) -> None:
        """Delete the cgroup (once its processes are gone)."""
        if self.cgroup is None:
            return
        for _ in range(20):
            try:
                self.cgroup.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)
        LOG.debug("Could not remove cgroup %s", self.cgroup)


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the environment's process group (works on stopped processes too)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def signal_group(process: subprocess.Popen, signum: int) -> None:
    """Send ``signum`` to the environment's process group, if it is still there."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def merge_layers(layer_dirs: list[Path], target: Path) -> None:
    """Build one ``/opt`` from layers in order, later layers' files replacing earlier ones (as AWS does).

    Files are hard links where possible (no copy), else copies.
    """

    def link_or_copy(source: str, destination: str) -> None:
        if os.path.lexists(destination):
            os.unlink(destination)
        try:
            os.link(source, destination, follow_symlinks=False)
        except OSError:
            shutil.copy2(source, destination, follow_symlinks=False)

    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for layer_dir in layer_dirs:
        shutil.copytree(layer_dir, staging, symlinks=True, copy_function=link_or_copy, dirs_exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


class _Spawner:
    """Starts processes from one long-lived thread.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked a process ends; LocalStack starts
    environments from short-lived threads, so they are forked here instead.
    """

    def __init__(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        """``subprocess.Popen(*args, **kwargs)``, run by the spawner thread."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="host-env-spawner", daemon=True)
                self._thread.start()
        future: Future = Future()
        self._requests.put((future, args, kwargs))
        return future.result()

    def _serve(self) -> None:
        while True:
            future, args, kwargs = self._requests.get()
            try:
                future.set_result(subprocess.Popen(*args, **kwargs))
            except BaseException as e:
                future.set_exception(e)


spawner = _Spawner()

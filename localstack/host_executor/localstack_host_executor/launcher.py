"""First code of an execution environment's process: the sandbox, then AWS's runtime interface client.

The host executor starts ``<python> -I -S launcher.py <config.json>`` (standard library only; nothing
of LocalStack's or the harness's packages is importable). Like AWS's ``/var/runtime/bootstrap.py``,
it ends in ``awslambdaric``'s loop, which talks to the Runtime API at ``AWS_LAMBDA_RUNTIME_API``
(served per process by the executor). Before that, in this process:

- it dies with the executor (``PR_SET_PDEATHSIG``, which also reaches a stopped process) and joins
  the environment's memory cgroup, if the executor made one;
- with a private mount namespace (when the executor found that the host allows one): the function
  code read-only at ``/var/task``, the merged layers read-only at ``/opt``, the runtime's packages
  read-only at ``/var/runtime``, a private ``/tmp`` of the function's ephemeral-storage size, and
  every other file system path read-only, as on AWS;
- ``sys.path``: task root, ``/opt/python/lib/pythonX.Y/site-packages``, ``/opt/python``, the
  standard library, runtime folder.

``launcher.py --probe <dir>`` reports (JSON on stdout) which of these mounts the host allows.
"""

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import signal
import struct
import sys

PR_SET_PDEATHSIG = 1
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A
LO_FLAGS_AUTOCLEAR = 4


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _encode(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """The mount(2) system call; raises ``OSError`` with its errno."""
    result = _libc().mount(
        _encode(source), _encode(target), _encode(fstype), ctypes.c_ulong(flags), _encode(data)
    )
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mount {source or fstype} on {target}: {os.strerror(code)}")


def enter_private_mount_namespace() -> None:
    """Give this process mounts of its own; nothing done here is seen by the host."""
    os.unshare(os.CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def bind_read_only(source: str, target: str) -> None:
    """Show ``source`` at ``target``, read-only even for root (writes fail with EROFS)."""
    mount(source, target, None, MS_BIND | MS_REC)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def attach_loop_device(image: str) -> tuple[int, str]:
    """Attach ``image`` to a free loop device that detaches itself once unmounted: (fd, device).

    Done before entering the mount namespace: the loop device then writes to the image through the
    host's mount, so this namespace's root can still be made read-only.
    """
    backing = os.open(image, os.O_RDWR | os.O_CLOEXEC)
    control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(50):
            device = f"/dev/loop{fcntl.ioctl(control, LOOP_CTL_GET_FREE)}"
            loop = os.open(device, os.O_RDWR | os.O_CLOEXEC)
            # struct loop_config: fd, block_size, struct loop_info64 (lo_flags at 52), reserved.
            loop_config = struct.pack(
                "=II5Q4I64s64s32s2Q8Q", backing, 0, *[0] * 5, 0, 0, 0, LO_FLAGS_AUTOCLEAR,
                os.fsencode(image)[-63:], b"", b"", *[0] * 10,
            )  # fmt: skip
            try:
                fcntl.ioctl(loop, LOOP_CONFIGURE, loop_config)
                return loop, device
            except OSError as e:
                os.close(loop)
                if e.errno != errno.EBUSY:  # EBUSY: another environment took it first
                    raise
        raise OSError(errno.EBUSY, "no free loop device")
    finally:
        os.close(control)
        os.close(backing)


def mount_tmp(target: str, tmp: dict, loop_device: str | None = None) -> None:
    """Mount the environment's private ``/tmp``: an ext4 image of the storage size, or a tmpfs."""
    if loop_device:
        mount(loop_device, target, "ext4", MS_NOSUID | MS_NODEV)
        lost_and_found = os.path.join(target, "lost+found")
        if os.path.isdir(lost_and_found):
            os.rmdir(lost_and_found)
    else:
        mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp['size_mb']}m,mode=1777")
    os.chmod(target, 0o1777)


def build_sandbox(config: dict) -> None:
    """Set up this process's view of the file system as described by the executor's config."""
    tmp = config["tmp"]
    loop, device = attach_loop_device(tmp["image"]) if tmp["kind"] == "ext4-image" else (None, None)
    enter_private_mount_namespace()
    for source, target in config["read_only_mounts"]:
        bind_read_only(source, target)
    mount_tmp("/tmp", tmp, device)
    if loop is not None:
        os.close(loop)  # the mount keeps the device; it detaches when the mount goes
    # Everything else read-only, as AWS's root file system is; /tmp (and /proc, /dev) stay writable.
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def die_with_executor(parent_pid: int) -> None:
    """Be killed when the thread of LocalStack that started us goes away (even when stopped)."""
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def join_cgroup(procs_file: str | None) -> None:
    """Move this process (and so all it starts) into the environment's memory cgroup."""
    if procs_file:
        with open(procs_file, "w", encoding="ascii") as f:
            f.write(str(os.getpid()))


def run(config: dict) -> None:
    """Enter the sandbox and hand over to ``awslambdaric`` (never returns)."""
    die_with_executor(config["parent_pid"])
    join_cgroup(config.get("cgroup_procs"))
    if config["isolate"]:
        build_sandbox(config)
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    os.chdir(task_root)
    sys.path[:0] = config["path_front"]
    sys.path.extend(config["path_back"])
    from awslambdaric import __main__ as ric

    ric.main([sys.argv[0], os.environ["_HANDLER"]])


def probe(work_dir: str) -> dict:
    """Try, in a throwaway mount namespace, each mount ``build_sandbox`` would need."""
    found = dict.fromkeys(("namespace", "read_only_bind", "ext4_image", "tmpfs", "read_only_root"), False)
    image = os.path.join(work_dir, "tmp.img")
    loop, device = None, None
    try:
        if os.path.exists(image):
            with contextlib.suppress(OSError):
                loop, device = attach_loop_device(image)
        enter_private_mount_namespace()
        found["namespace"] = True
        read_only = os.path.join(work_dir, "read-only")
        bind_read_only(read_only, read_only)
        try:
            open(os.path.join(read_only, "probe"), "w").close()
        except OSError as e:
            found["read_only_bind"] = e.errno == errno.EROFS
        if device:
            try:
                mount_tmp(os.path.join(work_dir, "image"), {"kind": "ext4-image"}, device)
                found["ext4_image"] = True
            except OSError:
                pass
        mount_tmp(os.path.join(work_dir, "tmpfs"), {"kind": "tmpfs", "size_mb": 1})
        found["tmpfs"] = True
        mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        found["read_only_root"] = True
    except OSError:
        pass
    finally:
        if loop is not None:
            os.close(loop)
    return found


def main(argv: list[str]) -> int:
    """``launcher.py <config.json>`` or ``launcher.py --probe <dir>``."""
    if argv[1] == "--probe":
        print(json.dumps(probe(argv[2])))
        return 0
    with open(argv[1], encoding="utf-8") as f:
        config = json.load(f)
    run(config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

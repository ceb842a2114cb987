"""Running strangers' servers in a bubblewrap sandbox.

What a sandboxed server gets: a read-only view of the file system with every home
directory hidden, a fresh writable HOME and /tmp, its own PID, IPC, UTS and network
namespaces (no network at all for stdio servers), CPU-time, address-space, open-file and
(when we run as root, by switching it to an unprivileged uid of its own) process-count limits, and death with
its parent, so killing the sandbox kills the whole tree.
Installation happens in a separate step (see ``installer``), never inside a run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: Credential stores under the invoking user's HOME that a server has no business reading.
SENSITIVE_HOME_ENTRIES = (
    ".ssh",
    ".aws",
    ".azure",
    ".gnupg",
    ".config",
    ".docker",
    ".kube",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".gitconfig",
    ".password-store",
    ".bash_history",
    ".python_history",
    ".psql_history",
    ".pgpass",
    ".my.cnf",
    ".local/share/keyrings",
    ".mozilla",
    ".thunderbird",
)


class SandboxUnavailable(RuntimeError):
    """No working sandbox here; running packages needs an explicit --unsafe-no-sandbox."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 120
    memory_bytes: int = 4 * 1024**3
    open_files: int = 1024
    processes: int = 256
    #: Per file the server writes, its stderr log (a file of ours) included: a server that
    #: floods stderr or its home stops at this size instead of filling the disk.
    file_bytes: int = 512 * 1024**2


#: When we are root, each sandbox runs as an unprivileged uid of its own (RLIMIT_NPROC does
#: not bind root, and counts every thread of a uid: servers sharing one uid would share the
#: budget, so eight Node servers at once would starve each other).
SANDBOX_UIDS = (100_000, 900_000)


def sandbox_uid(home: Path) -> int:
    """A uid for the sandbox whose fresh HOME is ``home`` (stable for that path)."""
    lo, span = SANDBOX_UIDS
    return lo + zlib.crc32(str(home).encode()) % span


@lru_cache(maxsize=1)
def bwrap_works() -> bool:
    exe = shutil.which("bwrap")
    if not exe:
        return False
    try:
        proc = subprocess.run(
            [exe, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def resolve_mode(mode: str) -> str:
    """``auto`` -> ``bwrap`` where it works; ``bwrap`` without it is an error; ``none`` is explicit."""
    if mode == "none":
        return "none"
    if bwrap_works():
        return "bwrap"
    if mode == "bwrap":
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed or cannot create namespaces here")
    raise SandboxUnavailable(
        "no sandbox available (install bubblewrap); refusing to run packages without one — "
        "pass --unsafe-no-sandbox to run them anyway"
    )


def drops_privileges() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def prepare_home(home: Path) -> None:
    """The fresh HOME must be writable by the user the server runs as."""
    if drops_privileges():
        uid = sandbox_uid(home)
        os.chown(home, uid, uid)


def _under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def hide_homes(readonly_paths: Sequence[Path] = ()) -> list[str]:
    """bwrap arguments that make every home directory disappear (credentials, shell history,
    other projects, and files as much as directories: a ``.netrc`` cannot be mounted over one
    by one) and show read-only only what the sandboxed program needs from there: the Python it
    runs on and ``readonly_paths``. Must follow a ``--tmpfs /tmp``: paths under /tmp are
    shown again the same way."""
    real_home = Path(os.path.expanduser("~")).resolve()
    hidden = list(dict.fromkeys(h for h in (real_home, Path("/root"), Path("/home")) if h.is_dir() and h != Path("/")))
    args: list[str] = []
    for h in hidden:
        args += ["--perms", "0755", "--tmpfs", str(h)]
    needed = [Path(sys.base_prefix).resolve(), *(Path(p).resolve() for p in readonly_paths)]
    for path in dict.fromkeys(needed):
        root = next((h for h in (*hidden, Path("/tmp")) if _under(path, h) and path != h), None)
        if root is None or not path.exists():
            continue
        # Directories bwrap creates on the way are private (0700): create them readable.
        for parent in reversed(path.relative_to(root).parents[:-1]):
            args += ["--perms", "0755", "--dir", str(root / parent)]
        args += ["--ro-bind", str(path), str(path)]
    return args


def program_roots(program: str) -> list[Path]:
    """The installation a program on PATH lives in (``~/.nvm/versions/node/v20`` for a
    ``node`` from nvm): hidden with the home directories otherwise."""
    found = shutil.which(program)
    if found is None or "/" in program:
        return []
    return [Path(found).resolve().parent.parent]


def wrap(
    command: Sequence[str],
    *,
    home: Path,
    mode: str,
    network: bool = False,
    readonly_paths: Sequence[Path] = (),
    limits: Limits = Limits(),
) -> list[str]:
    """The command line that runs ``command`` sandboxed (or merely resource-limited for ``none``)."""
    command = list(command)
    memory = [f"--as={limits.memory_bytes}"]
    if Path(command[0]).name == "node":
        # V8 reserves far more address space than it uses (WebAssembly cages): an address-space
        # limit kills Node servers at start. Node's heap is capped by its own flag instead.
        memory = []
        command = [command[0], f"--max-old-space-size={limits.memory_bytes // 2**20 // 2}", *command[1:]]
    limited = [
        "prlimit",
        f"--cpu={limits.cpu_seconds}",
        *memory,
        f"--nofile={limits.open_files}",
        f"--fsize={limits.file_bytes}",
    ]
    if shutil.which("prlimit") is None:
        limited = []
    if mode == "none":
        return [*limited, "--", *command] if limited else list(command)
    privileged = drops_privileges()
    args = ["bwrap", "--die-with-parent", "--new-session"]
    if privileged:
        # As root: no user namespace, so the server can be switched to a uid of its own, where the
        # process-count limit binds and root-only files are out of reach.
        args += [
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
        ]
        if not network:
            args.append("--unshare-net")
    else:
        args.append("--unshare-all")
        if network:
            args.append("--share-net")
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp"]
    args += hide_homes([*readonly_paths, *program_roots(command[0])])
    args += [
        "--bind",
        str(home),
        str(home),
        "--chdir",
        str(home),
        "--setenv",
        "HOME",
        str(home),
        "--setenv",
        "TMPDIR",
        "/tmp",
        "--",
    ]
    if privileged:
        args += [
            "setpriv",
            f"--reuid={sandbox_uid(home)}",
            f"--regid={sandbox_uid(home)}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
        limited = [*limited, f"--nproc={limits.processes}"] if limited else []
    return [*args, *limited, "--", *command] if limited else [*args, *command]


def sandbox_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal environment: nothing of the caller's secrets leaks through variables."""
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
        "NODE_NO_WARNINGS": "1",
        "npm_config_update_notifier": "false",
    }
    env.update(extra or {})
    return env

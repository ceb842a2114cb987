"""Running strangers' servers in a bubblewrap sandbox.

What a sandboxed server gets: a read-only view of the file system with the user's
credential stores hidden, a fresh writable HOME and /tmp, its own PID, IPC, UTS and
network namespaces (no network at all for stdio servers), CPU-time, address-space and
open-file limits, and death with its parent, so killing the sandbox kills the whole tree.
Installation happens in a separate step (see ``installer``), never inside a run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
    limited = [
        "prlimit",
        f"--cpu={limits.cpu_seconds}",
        f"--as={limits.memory_bytes}",
        f"--nofile={limits.open_files}",
        "--",
        *command,
    ]
    if shutil.which("prlimit") is None:
        limited = list(command)
    if mode == "none":
        return limited
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-all"]
    if network:
        args.append("--share-net")
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    real_home = Path(os.path.expanduser("~"))
    for entry in SENSITIVE_HOME_ENTRIES:
        p = real_home / entry
        if p.is_dir():
            args += ["--tmpfs", str(p)]
        elif p.exists():
            args += ["--ro-bind", "/dev/null", str(p)]
    for path in readonly_paths:
        args += ["--ro-bind-try", str(path), str(path)]
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
        *limited,
    ]
    return args


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

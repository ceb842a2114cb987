"""Running strangers' servers in a bubblewrap sandbox.

What a sandboxed server gets: a read-only view of the system's own top-level directories
(:data:`KEPT_AT_TOP`), with every home directory, every other top-level directory, the
crawler's working directory and its checkout hidden, a fresh HOME and /tmp in memory of
a set size, an empty /run, its own PID, IPC, UTS and network namespaces (no network at all
for stdio servers), no Unix socket of the machine (listed sockets masked, and a seccomp
filter refusing ``socket(AF_UNIX)`` and the other ways to one), CPU-time, address-space,
open-file, file-size and (when we run as root, by switching it to an unprivileged uid of its
own) process-count limits, and death with its parent, so killing the sandbox kills the whole
tree. Installation happens in a separate step (see ``installer``) in the same sandbox with
network, never inside a run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path


class SandboxUnavailable(RuntimeError):
    """No working sandbox here; running packages needs an explicit --unsafe-no-sandbox."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 120
    memory_bytes: int = 4 * 1024**3
    open_files: int = 1024
    processes: int = 256
    #: Per file written, the stderr log (a file of ours) included: a server flooding stderr
    #: stops at this size instead of filling the disk.
    file_bytes: int = 512 * 1024**2
    #: Size of each in-memory file system the sandbox writes to (its /tmp, and a server's
    #: HOME): they are RAM, which the address-space limit does not count.
    scratch_bytes: int = 256 * 1024**2


#: When we are root, each sandbox runs as an unprivileged uid of its own (RLIMIT_NPROC does
#: not bind root, and counts every thread of a uid: servers sharing one uid would share the
#: budget, so eight Node servers at once would starve each other).
SANDBOX_UIDS = (100_000, 900_000)


def sandbox_uid(workdir: Path) -> int:
    """A uid for the sandbox whose one writable directory is ``workdir`` (a server's fresh
    HOME, an install's directory): stable for that path."""
    lo, span = SANDBOX_UIDS
    return lo + zlib.crc32(str(workdir).encode()) % span


@cache
def system_tool(name: str) -> str:
    """The absolute path of one of the tools the sandbox is built from (bwrap, setpriv,
    prlimit, env), found on *our* PATH, or ``name`` where it is missing.  Never the bare name
    on a command line: a process is looked up on the PATH of the environment it is given, and a
    catalogue entry's variables once chose PATH, so a package's console script named ``bwrap``
    ran as root outside every namespace (a helper's hunt)."""
    found = shutil.which(name)
    # Resolved: a link in a home directory (hidden in the sandbox) to the real program.
    return str(Path(found).resolve()) if found else name


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


def is_under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


#: Where the programs a sandbox runs live: a directory holding any of them is never hidden.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc")


def _own_directories(cwd: Path | None, node: str | None) -> list[Path]:
    """The crawler's working directory and this checkout: where ``catalog.db`` (overrides
    included), the settings and a test's package cache live.  A server read the catalogue
    through the read-only root and could publish it as a tool description (a helper's hunt).
    Not a directory that holds the system's or Python's programs (a crawl started in /usr)."""
    # Not the crawler's own virtualenv (sys.prefix): servers run on the Python it is made from.
    programs = [Path(d) for d in SYSTEM_DIRS] + [Path(sys.base_prefix).resolve()]
    if node:
        programs.append(Path(node).resolve().parent)
    found = [cwd] if cwd is not None else []
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():  # installed as a package, this is site-packages
        found.append(checkout)
    # Neither a directory holding programs (a crawl started in /usr) nor one inside them
    # (started in /usr/lib, whose libc every program needs), nor /tmp or /run, which every
    # sandbox replaces with its own (a crawl started in /tmp hid the sandbox's /tmp).
    scratch = (Path("/tmp"), Path("/run"))
    return [
        d
        for d in found
        if d != Path("/")
        and not any(is_under(d, place) for place in scratch)
        and not any(is_under(prog, d) or is_under(d, prog) for prog in programs)
    ]


#: What a sandbox keeps of the file system's top level: the system's programs, libraries and
#: configuration, and the kernel's views (remounted or read-only); /tmp and /run are its own.
#: Every other top-level directory (/var, /srv, /opt, /mnt, /media, a machine's /data or
#: /work) is hidden like a home: a server read what was world-readable there (a service's
#: configuration with its database password, other projects' files) and could publish it in
#: its descriptions.  What a server needs from one (the Python it runs on, its Node, its
#: install) is shown again, as from a home.
KEPT_AT_TOP = frozenset(
    {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "proc", "dev", "sys", "tmp", "run"}
    # Package stores whose programs load their libraries from there (Nix, Guix, snaps): read-only
    # and world-readable by design.
    | {"nix", "gnu", "snap"}
)


def _elsewhere_at_top() -> tuple[list[Path], list[Path]]:
    """The top-level directories and files outside :data:`KEPT_AT_TOP` (links followed; a link
    into a kept directory, such as /bin -> usr/bin, is kept)."""
    kept = [Path("/", name) for name in KEPT_AT_TOP]
    dirs: list[Path] = []
    files: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in sorted(Path("/").iterdir()):
            if entry.name in KEPT_AT_TOP:
                continue
            with contextlib.suppress(OSError):
                real = entry.resolve()
                if real == Path("/") or any(is_under(real, k) for k in kept):
                    continue
                if real.is_dir():
                    dirs.append(real)
                elif real.is_file() and real.parent == Path("/"):
                    files.append(real)
    return dirs, files


def hidden_roots() -> list[Path]:
    """Directories every sandbox hides behind an empty in-memory one: the home directories,
    the crawler's own (:func:`_own_directories`) and every top-level directory the system
    does not need (:data:`KEPT_AT_TOP`); none inside another.  Asked several times per sandbox
    start, worked out once per home, working directory and PATH."""
    cwd = None
    with contextlib.suppress(OSError):
        cwd = Path.cwd().resolve()
    return list(_hidden_roots(Path(os.path.expanduser("~")).resolve(), cwd, os.environ.get("PATH", "")))


@lru_cache(maxsize=8)
def _hidden_roots(real_home: Path, cwd: Path | None, path: str) -> tuple[Path, ...]:
    node = shutil.which("node", path=path or None)
    elsewhere = _elsewhere_at_top()[0]
    roots = [
        h for h in (real_home, Path("/root"), Path("/home"), *elsewhere, *_own_directories(cwd, node)) if h.is_dir()
    ]
    roots = [h for h in dict.fromkeys(roots) if h != Path("/")]
    return tuple(h for h in roots if not any(other != h and is_under(h, other) for other in roots))


def hide_homes(readonly_paths: Sequence[Path] = ()) -> list[str]:
    """bwrap arguments that make every home directory disappear (credentials, shell history,
    other projects, and files as much as directories: a ``.netrc`` cannot be mounted over one
    by one) and show read-only only what the sandboxed program needs from there: the Python it
    runs on and ``readonly_paths``. Must follow a ``--tmpfs /tmp``: paths under /tmp are
    shown again the same way."""
    hidden = hidden_roots()
    args: list[str] = []
    for h in hidden:
        args += ["--perms", "0755", "--tmpfs", str(h)]
    needed = [Path(sys.base_prefix).resolve(), *_interpreter_libraries(), *(Path(p).resolve() for p in readonly_paths)]
    shown: list[Path] = []
    for path in dict.fromkeys(needed):
        # A path equal to a hidden directory is shown too: `catalog introspect -- python
        # server.py` started in the working directory asks for that directory itself.
        root = _root_holding(path, (*hidden, Path("/tmp")), strict=False)
        if root is None or not path.exists() or any(is_under(path, done) for done in shown):
            continue
        shown.append(path)
        args += [*open_parents(path, root), "--ro-bind", str(path), str(path)]
    return args


@cache
def _interpreter_libraries() -> tuple[Path, ...]:
    """The shared libraries the interpreters servers run on (this Python's, and Node's) load,
    as the host's dynamic loader finds them (``ldd``): a Python or Node built into /opt with its
    OpenSSL elsewhere would not start with only its own directory shown (a hunt).  Our own
    interpreters, never a package's program."""
    found: list[Path] = []
    for exe in (os.path.realpath(sys.executable), shutil.which("node")):
        if not exe:
            continue
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            out = subprocess.run(["ldd", exe], capture_output=True, text=True, timeout=10, check=False).stdout
            found += [Path(m).resolve() for m in re.findall(r"=>\s+(/\S+)", out)]
    return tuple(dict.fromkeys(p for p in found if p.is_file()))


def _root_holding(path: Path, roots: Sequence[Path], *, strict: bool = True) -> Path | None:
    """The first of ``roots`` (in-memory file systems the sandbox lays over the host's) that
    ``path`` lies strictly inside (or is, unless ``strict``): where it must be shown again, or
    ``None``."""
    return next((root for root in roots if is_under(path, root) and (path != root or not strict)), None)


def open_parents(path: Path, root: Path) -> list[str]:
    """Directories bwrap creates on the way to a mount point inside ``root`` (an in-memory
    file system) are private (0700): the sandbox's uid could not get through them. Create
    them readable first."""
    return [
        a
        for parent in reversed(path.relative_to(root).parents[:-1])
        for a in ("--perms", "0755", "--dir", str(root / parent))
    ]


def unix_sockets() -> list[Path]:
    """Every Unix socket bound to a path on this machine (``/proc/net/unix``). A socket is
    reached through the file system, not the network: PostgreSQL's in /run, Docker's, D-Bus's
    would each hand a sandboxed program the machine (a trusted local PostgreSQL runs
    ``COPY ... TO PROGRAM`` as its own user; a review did exactly that)."""
    try:
        lines = Path("/proc/net/unix").read_text(encoding="utf-8", errors="replace").splitlines()[1:]
    except OSError:
        return []
    found: list[Path] = []
    for line in lines:
        fields = line.split(None, 7)
        if len(fields) == 8 and fields[7].startswith("/"):  # "@..." is abstract: the network namespace's
            with contextlib.suppress(OSError):
                path = Path(fields[7]).resolve()
                if stat.S_ISSOCK(path.lstat().st_mode):
                    found.append(path)
    return list(dict.fromkeys(found))


def _mask_sockets(already_hidden: Sequence[Path]) -> list[str]:
    """Each Unix socket outside the hidden directories, and each file at the top level outside
    :data:`KEPT_AT_TOP` (an in-memory directory cannot cover a file), replaced by /dev/null."""
    args: list[str] = []
    for path in [*unix_sockets(), *_elsewhere_at_top()[1]]:
        if not any(is_under(path, root) for root in already_hidden):
            args += ["--ro-bind", "/dev/null", str(path)]
    return args


@lru_cache(maxsize=1)
def _bwrap_sizes() -> bool:
    """bwrap 0.7 and later can size a tmpfs (--size); 0.6 (Ubuntu 22.04) cannot."""
    try:
        out = subprocess.run([system_tool("bwrap"), "--help"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--size" in out.stdout + out.stderr


def _scratch(path: str, size: int, perms: str) -> list[str]:
    sized = ["--size", str(size)] if _bwrap_sizes() else []
    return [*sized, "--perms", perms, "--tmpfs", path]


def program_roots(program: str) -> list[Path]:
    """What a program on PATH needs shown when it lives in a home directory (a ``node`` from
    nvm or from a tarball in ``~/.local``): the executable itself and, for npm, its package,
    never the directory around them (``~/.local`` holds shell histories too)."""
    found = shutil.which(program)
    if found is None or "/" in program:
        return []
    exe = Path(found).resolve()
    # npm is a script inside its package: .../lib/node_modules/npm/bin/npm-cli.js
    package = next((p for p in exe.parents if p.name == program and (p / "package.json").is_file()), None)
    return [package] if package is not None else [exe]


def prlimit_args(limits: Limits, *, address_space: bool = True, processes: bool = False) -> list[str]:
    """Resource limits on the command that follows; none where prlimit is missing."""
    if shutil.which("prlimit") is None:
        return []
    args = [
        system_tool("prlimit"),
        f"--cpu={limits.cpu_seconds}",
        f"--nofile={limits.open_files}",
        f"--fsize={limits.file_bytes}",
    ]
    if address_space:
        args.append(f"--as={limits.memory_bytes}")
    else:
        # Node (V8 reserves far more address space than it uses): RLIMIT_DATA counts only the
        # private writable memory, the reservations it commits included, so Buffers and other
        # allocations outside V8's heap stop there too (a hunt's Node server held gigabytes
        # outside its heap cap).
        args.append(f"--data={limits.memory_bytes}")
    if processes:
        args.append(f"--nproc={limits.processes}")
    return [*args, "--"]


def bwrap_args(
    *,
    workdir: Path,
    home: Path,
    network: bool,
    readonly_paths: Sequence[Path] = (),
    home_in_memory: bool = True,
    limits: Limits = Limits(),
    extra: Sequence[str] = (),
) -> list[str]:
    """The sandbox up to the command: bubblewrap and, as root, a switch to the uid of
    ``workdir`` (:func:`sandbox_uid`). ``workdir`` is the one writable host directory
    (bound in, and the working directory); ``home`` is HOME, an in-memory file system of
    its own where ``home_in_memory``, else a directory under ``workdir``; ``extra`` bwrap
    arguments come last, after the homes are hidden. Without network,
    /run (every daemon's sockets) is an empty in-memory directory too; with it (installs:
    /run may hold the resolver's configuration), each Unix socket is masked instead."""
    privileged = drops_privileges()
    args = [system_tool("bwrap"), "--die-with-parent", "--new-session"]
    if privileged:
        # As root: no user namespace, so the program can be switched to a uid of its own, where the
        # process-count limit binds and root-only files are out of reach.
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        if not network:
            args.append("--unshare-net")
    else:
        args.append("--unshare-all")
        if network:
            args.append("--share-net")
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # bwrap's /dev/shm is a tmpfs as large as RAM, writable by the sandbox's user where it
    # runs unprivileged (a review held 859 MB there): sized like /tmp.
    args += _scratch("/dev/shm", limits.scratch_bytes, "1777")
    args += _scratch("/tmp", limits.scratch_bytes, "1777")
    hidden = [*hidden_roots(), Path("/tmp")]
    if not network:
        args += _scratch("/run", 1024**2, "0755")
        hidden.append(Path("/run"))
    args += hide_homes(readonly_paths)
    args += _mask_sockets(hidden)
    if not (home_in_memory and home == workdir):
        # An install's directory under a hidden home (~/.cache/mcp-catalog) or /tmp.
        real = workdir.resolve()
        root = _root_holding(real, hidden)
        args += [*(open_parents(real, root) if root else []), "--bind", str(real), str(real)]
    if home_in_memory:
        args += _scratch(str(home), limits.scratch_bytes, "1777" if privileged else "0700")
    # Once everything shown inside them is in place, the hidden directories' empty file systems
    # are made read-only: run unprivileged, each would be the server's own to fill, unsized,
    # in RAM no memory limit counts (a hunt wrote 400 MB into each of nine).
    args += [a for h in hidden_roots() for a in ("--remount-ro", str(h))]
    args += [*extra, "--chdir", str(workdir), "--setenv", "HOME", str(home), "--setenv", "TMPDIR", "/tmp", "--"]
    if privileged:
        uid = sandbox_uid(workdir)
        args += [system_tool("setpriv"), f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        args += ["--inh-caps=-all", "--bounding-set=-all", "--"]
    return args


#: Per seccomp audit architecture: (socket, socketpair, io_uring_setup, memfd_create, shmget)
#: system call numbers.
_CALLS = {0xC000003E: (41, 53, 425, 319, 29), 0xC00000B7: (198, 199, 425, 279, 194)}  # x86_64, aarch64
_X32_BIT = 0x40000000


def no_unix_sockets_filter() -> bytes:
    """A seccomp (classic BPF) program that keeps a server from reaching Unix sockets of the
    machine, which masking the sockets /proc/net/unix lists cannot (one bound after the
    sandbox starts, or renamed since, is missed). Refused with EACCES: ``socket(AF_UNIX)``;
    ``socketpair`` of any type but a stream (a datagram pair can ``sendto`` a path; Python and
    Node use stream pairs within a process); ``io_uring_setup`` (io_uring makes sockets without
    the ``socket`` call); every x32 call and every call of another architecture (i386 through
    ``int 0x80``, where ``socketcall`` is another way in).  Also memory the address-space
    limit does not count: ``memfd_create`` (ENOSYS, as on old kernels) and System V
    ``shmget`` (a hunt held 6 GiB in 24 memfds and 5 GiB of SysV segments from one server)."""
    ld, jeq, jge, ret, alu_and = 0x20, 0x15, 0x35, 0x06, 0x54  # BPF_LD|W|ABS, JMP JEQ/JGE K, RET K, ALU AND K
    # (label, code, k, jump if true, jump if false): jumps name labels, None falls through.
    x86, arm = 0xC000003E, 0xC00000B7
    listing: list[tuple[str | None, int, int, str | None, str | None]] = [
        (None, ld, 4, None, None),  # seccomp_data.arch
        (None, jeq, x86, "x86", None),
        (None, jeq, arm, "arm", "refuse"),  # any other architecture: refused outright
        ("x86", ld, 0, None, None),  # seccomp_data.nr
        (None, jge, _X32_BIT, "refuse", None),
        (None, jeq, _CALLS[x86][0], "domain", None),
        (None, jeq, _CALLS[x86][1], "type", None),
        (None, jeq, _CALLS[x86][2], "refuse", None),
        (None, jeq, _CALLS[x86][3], "absent", None),
        (None, jeq, _CALLS[x86][4], "refuse", "allow"),
        ("arm", ld, 0, None, None),
        (None, jeq, _CALLS[arm][0], "domain", None),
        (None, jeq, _CALLS[arm][1], "type", None),
        (None, jeq, _CALLS[arm][2], "refuse", None),
        (None, jeq, _CALLS[arm][3], "absent", None),
        (None, jeq, _CALLS[arm][4], "refuse", "allow"),
        ("domain", ld, 16, None, None),  # seccomp_data.args[0] (low 32 bits): the domain
        (None, jeq, 1, "refuse", "allow"),  # AF_UNIX
        ("type", ld, 24, None, None),  # seccomp_data.args[1]: the type, with SOCK_* flags
        (None, alu_and, 0xF, None, None),
        (None, jeq, 1, "allow", "refuse"),  # SOCK_STREAM
        ("allow", ret, 0x7FFF0000, None, None),  # SECCOMP_RET_ALLOW
        ("refuse", ret, 0x00050000 | 13, None, None),  # SECCOMP_RET_ERRNO | EACCES
        ("absent", ret, 0x00050000 | 38, None, None),  # ENOSYS: callers fall back to a file or mmap
    ]
    where = {label: i for i, (label, *_) in enumerate(listing) if label}
    code = b""
    for i, (_, op, k, yes, no) in enumerate(listing):
        jt = where[yes] - i - 1 if yes else 0
        jf = where[no] - i - 1 if no else 0
        code += struct.pack("=HBBI", op, jt, jf, k)
    return code


def seccomp_fd() -> int:
    """An inheritable file descriptor holding :func:`no_unix_sockets_filter`, read from its
    start by bwrap (``--seccomp``); the caller closes it once the sandbox has started."""
    fd = os.memfd_create("mcp-catalog-seccomp", 0)
    os.write(fd, no_unix_sockets_filter())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


#: What a variable's name may be: anything else (``=``, NUL, a leading digit) cannot be set.
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def server_variables(env: Mapping[str, str]) -> list[str]:
    """``NAME=VALUE`` arguments for ``env`` from a catalogue entry's variables, those that can
    be set (a name ``env`` reads as a name, a value without NUL)."""
    return [f"{k}={v}" for k, v in env.items() if _VARIABLE.fullmatch(k) and "\0" not in v]


def wrap(
    command: Sequence[str],
    *,
    home: Path,
    mode: str,
    readonly_paths: Sequence[Path] = (),
    limits: Limits = Limits(),
    seccomp_fd: int | None = None,
    env: Mapping[str, str] | None = None,
    node: bool | None = None,
) -> list[str]:
    """The command line that runs a server's ``command`` sandboxed, with no network (or merely
    resource-limited for ``none``); ``seccomp_fd``, open in the child, holds
    :func:`no_unix_sockets_filter` for bwrap to apply.

    ``env`` (a catalogue entry's variables: a stranger's choice) is set by ``env`` as the very
    last step, after the sandbox, the uid switch and the limits: PATH or LD_PRELOAD there
    reach the server's own processes, never bwrap, setpriv or prlimit.  ``node`` says the
    server runs on Node (an npm install), whose address space is not limited; ``None``
    decides by the command's name, which only a person's own command line may do (a package
    shipping a console script named ``node`` escaped the memory limit that way).  Node's
    written memory is limited instead (:func:`prlimit_args`: RLIMIT_DATA), its heap by V8's own
    flag."""
    command = list(command)
    if node is None:
        node = Path(command[0]).name == "node"
    if node:
        # V8 reserves far more address space than it uses (WebAssembly cages): an address-space
        # limit kills Node servers at start. Node's heap is capped by its own flag instead.
        command = [command[0], f"--max-old-space-size={limits.memory_bytes // 2**20 // 2}", *command[1:]]
    roots = program_roots(command[0])
    if "/" not in command[0]:
        # `node` of an npm install: found on our PATH, not on one the entry's variables set.
        command[0] = system_tool(command[0])
    variables = server_variables(env or {})
    if variables:
        if "=" in command[0]:
            # env would read `/cache/run=1/bin/server` as one more variable: sh starts it.
            command = [system_tool("sh"), "-c", 'exec "$0" "$@"', *command]
        command = [system_tool("env"), "--", *variables, *command]
    if mode == "none":
        return [*prlimit_args(limits, address_space=not node), *command]
    sandbox = bwrap_args(
        workdir=home,
        home=home,
        network=False,
        readonly_paths=[*readonly_paths, *roots],
        limits=limits,
        extra=["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else (),
    )
    privileged = drops_privileges()
    return [*sandbox, *prlimit_args(limits, address_space=not node, processes=privileged), *command]


def private_parent(path: Path) -> Path | None:
    """The first directory on the way to ``path`` that another uid cannot pass (no o+x),
    outside the hidden directories (which the sandbox recreates open); ``None`` if none."""
    real = path.resolve()
    hidden = [*hidden_roots(), Path("/tmp")]
    for parent in reversed(real.parents):
        if any(is_under(parent, h) for h in hidden):
            return None
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return parent
    return None


def give(tree: Path, uid: int) -> None:
    """Make ``tree`` (not following links) owned by ``uid``: the sandboxed uid before it writes
    there, ours again after, so nothing it left behind is its to change; handed back, nothing
    stays writable by group or others either (a package's ``chmod 777`` would let any local
    user change what the next crawl runs). coreutils walk it: a package can nest directories
    deeper than Python recurses and paths longer than PATH_MAX. Raises OSError on failure."""
    steps = [["chown", "-R", "-h", "-P", f"{uid}:{uid}", "--", str(tree)]]
    if uid == os.getuid():
        steps.append(["chmod", "-R", "go-w", "--", str(tree)])  # links are skipped, never followed
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode:
            raise OSError(f"{step[0]} of {tree} failed: {done.stderr.strip()[:200]}")


def sandbox_env(home: Path) -> dict[str, str]:
    """A minimal environment for the sandbox's own tools: nothing of the caller's secrets leaks
    through variables, and nothing of a catalogue entry's (those go to the server alone, see
    :func:`wrap`)."""
    return {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
        "NODE_NO_WARNINGS": "1",
        "npm_config_update_notifier": "false",
    }

"""Installing a catalogue entry's package into a per-package cache, and finding its command.

A venv per PyPI package, an npm prefix per npm package, both under the cache directory
and reused across crawls.  Installation needs the package registries, so it runs in its
own step (sandboxed with network, writing only the package's own directory); the server
later runs from that directory with no network.  npm lifecycle scripts are not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from crawler.introspection import reaper, sandbox

SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class InstallError(RuntimeError):
    """The package could not be installed or has no command to run."""


@dataclass(frozen=True)
class Installed:
    command: list[str]
    directory: Path


def default_cache_dir() -> Path:
    base = os.environ.get("CATALOG_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / ("" if os.environ.get("CATALOG_CACHE_DIR") else "mcp-catalog")


def _slot(cache: Path, kind: str, identifier: str, version: str | None) -> Path:
    return cache / kind / SAFE.sub("_", f"{identifier}@{version or 'latest'}")


#: How often a second install of one slot looks whether the first has finished.
LOCK_POLL = 0.2


@contextlib.asynccontextmanager
async def _slot_lock(slot: Path, timeout: float) -> AsyncIterator[None]:
    """One install of a slot at a time. A second install of the same package (a scheduled
    crawl beside a person's ``catalog introspect``, two crawls sharing a cache, two sources
    listing one package) started by removing the directory the first was still writing into,
    and one of them failed or ran a half-built install. It now waits for the first, then finds
    its finished install. The lock is ``flock`` on a file of ours under the cache (outside what
    the install's uid may write), so a crashed holder releases it with its process. The wait is
    bounded: the holder's own steps are (a venv, then pip or npm, tried twice on the network)."""
    # Apart from the slots (`x@1.0-rc.lock` is a version npm accepts, whose slot would be
    # another's lock file): cache/.locks/KIND/SLOT.
    locks = slot.parent.parent / ".locks" / slot.parent.name
    locks.mkdir(parents=True, exist_ok=True)
    path = locks / (slot.name + ".lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise InstallError(f"could not open the package cache's lock {path}: {exc.strerror or exc}") from exc
    try:
        deadline = time.monotonic() + 3 * timeout + 10
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InstallError(
                        f"another install of {slot.name} held the package cache for more than {3 * timeout + 10:.0f} s"
                    ) from None
                await asyncio.sleep(LOCK_POLL)
        yield
    finally:
        os.close(fd)  # releases the lock


#: What one install may take on disk in all (each file also stops at INSTALL_LIMITS.file_bytes):
#: a hunt's 2 MB wheel of zeros unpacked to 2 GB, so a 100 MB upload could fill a disk.
#: Measured every WATCH_SECONDS while the install runs, and once more when it ends.
MAX_INSTALL_BYTES = 4 * 1024**3
WATCH_SECONDS = 1.0


#: Files one install may make (an inode each): millions of empty files take no bytes, yet
#: exhaust a file system's inodes and make every look at the tree slow.
MAX_INSTALL_FILES = 500_000


@dataclass(frozen=True)
class Footprint:
    """What an install's tree takes on disk: bytes and files as ``du`` counts them (however deep
    it nests, links not followed, one file system), and whether it could be counted at all."""

    bytes: int = 0
    files: int = 0
    measured: bool = True

    def excess(self) -> str | None:
        """Which bound the tree passes, in words, or ``None`` within both."""
        if not self.measured:
            return "could not be measured within a minute"
        if self.files > MAX_INSTALL_FILES:
            return f"holds {self.files:,} files (at most {MAX_INSTALL_FILES:,})"
        if self.bytes > MAX_INSTALL_BYTES:
            return f"takes {self.bytes:,} bytes (at most {MAX_INSTALL_BYTES / 1024**3:g} GiB)"
        return None


def footprint(tree: Path) -> Footprint:
    """Measure ``tree``; a missing one takes nothing, one built to be slow to walk is not
    measured (and so over its budget)."""
    sizes = []
    for unit in ("-B1", "--inodes"):
        try:
            done = subprocess.run(
                ["du", "-s", "-x", unit, "--", str(tree)], capture_output=True, text=True, check=False, timeout=60
            )
        except subprocess.TimeoutExpired:
            return Footprint(measured=False)
        head = done.stdout.split(maxsplit=1)
        sizes.append(int(head[0]) if head and head[0].isdigit() else 0)
    return Footprint(bytes=sizes[0], files=sizes[1])


class TooLarge(Exception):
    """An install grew past its disk budget and was stopped; the message says which bound."""


async def _run(
    cmd: list[str], timeout: float, env: dict[str, str] | None = None, watch: Path | None = None
) -> tuple[int, str]:
    """Run ``cmd`` in a process group of its own; with ``watch``, kill it (``TooLarge``) once
    that directory passes its disk budget (:meth:`Footprint.excess`)."""
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    reaper.track(proc.pid)
    grew: list[str] = []

    async def guard(tree: Path) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            excess = (await asyncio.to_thread(footprint, tree)).excess()
            if excess:
                grew.append(excess)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                return

    watcher = asyncio.ensure_future(guard(watch)) if watch is not None else None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        await proc.wait()
        raise
    finally:
        if watcher is not None:
            watcher.cancel()
        reaper.untrack(proc.pid)
    if grew:
        raise TooLarge(grew[0])
    return proc.returncode or 0, out.decode("utf-8", "replace")


#: pip/npm output that means the registry or the network hiccuped, not that the package is bad.
NETWORK_TROUBLE = (
    "ECONNRESET",
    "ETIMEDOUT",
    "EAI_AGAIN",
    "ENOTFOUND",
    "socket hang up",
    "ReadTimeoutError",
    "Connection reset",
    "Temporary failure in name resolution",
    "ConnectionError",
    "HTTP error 5",
)


async def _install(
    cmd: list[str], timeout: float, slot: Path, mode: str, manager: str, fresh: Callable[[], Awaitable[None]]
) -> tuple[int, str]:
    """Run an install command, sandboxed, with only the environment it needs; once more after
    a pause if it failed on the network, in a slot ``fresh`` has made anew: what the first run
    left there must never run, and pip run again starts the venv's Python, whose start-up runs
    every ``.pth`` file a wheel installed (a hunt's package made its own pip error read like
    network trouble and ran its code, with the install's network, on the retry). As root, the
    slot is the install's uid's while it runs and ours again after (nothing it left behind
    stays its to change)."""
    home = slot / ".home" if mode != "none" else Path(os.path.expanduser("~"))
    cmd, env = _sandboxed_install(cmd, slot, mode, manager), install_env(home, manager)
    handover = mode != "none" and sandbox.drops_privileges()
    if handover:
        blocked = sandbox.private_parent(slot)
        if blocked is not None:
            raise InstallError(
                f"the package cache {slot.parent} cannot be reached by the sandbox's uid: {blocked} is private "
                "(give it o+x, or choose another --cache-dir)"
            )

    async def once() -> tuple[int, str]:
        if handover:
            _give(slot, sandbox.sandbox_uid(slot))
        try:
            code, out = await _run(cmd, timeout, env, watch=slot)
            excess = (await asyncio.to_thread(footprint, slot)).excess()
            if excess:  # one that finished between two looks
                raise TooLarge(excess)
            return code, out
        finally:
            if handover and slot.exists():
                _give(slot, os.getuid())

    try:
        code, out = await once()
        if code and any(mark in out for mark in NETWORK_TROUBLE):
            await asyncio.sleep(2)
            await fresh()
            code, out = await once()
    except TooLarge as exc:
        _remove(slot)
        raise InstallError(f"the install {exc.args[0]} on disk: stopped and removed") from None
    return code, out


def _give(slot: Path, uid: int) -> None:
    try:
        sandbox.give(slot, uid)
    except OSError as exc:  # recorded as the install's failure, not a crawl's traceback
        raise InstallError(f"could not hand {slot} over: {exc}") from exc


def _last_error(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errs = [ln for ln in lines if "error" in ln.lower()] or lines
    return " ".join(errs[-1].split())[:300] if errs else "no output"


def _sandboxed_install(cmd: list[str], target: Path, mode: str, manager: str) -> list[str]:
    """Installs get network (registries) but may write only their own directory, run as a uid
    of their own when we are root, and see no home directory: a package's build script
    (``setup.py``) is a stranger's code with network, so ``~/.netrc``, ``~/.git-credentials``
    or ``~/.config/gh`` read there would be gone, and as root so would ``/etc/shadow``. The
    package manager's own settings are shown read-only where it looks for them under the
    install's HOME (pip's to pip, npm's to npm), so a private registry keeps working."""
    if mode == "none":
        return cmd
    home, install_home = Path(os.path.expanduser("~")), target / ".home"
    extra: list[str] = []
    for source, where in registry_settings(manager, home):
        extra += [
            *sandbox.open_parents(install_home / where, install_home),
            "--ro-bind",
            str(source),
            str(install_home / where),
        ]
    args = sandbox.bwrap_args(
        workdir=target,
        home=install_home,
        network=True,
        readonly_paths=[*(p for tool in ("npm", "node") for p in sandbox.program_roots(tool)), *named_files(manager)],
        home_in_memory=False,
        limits=INSTALL_LIMITS,
        extra=extra,
    )
    limits = sandbox.prlimit_args(INSTALL_LIMITS, address_space=manager != "npm", processes=sandbox.drops_privileges())
    return [*args, *limits, *cmd]


#: Builds take longer and write larger files (wheels of a few hundred MB) than servers.
INSTALL_LIMITS = sandbox.Limits(
    cpu_seconds=900, open_files=4096, processes=512, file_bytes=4 * 1024**3, scratch_bytes=2 * 1024**3
)


def registry_settings(manager: str, home: Path) -> list[tuple[Path, str]]:
    """(the user's settings file, where the manager looks for it under the install's HOME).
    A file named by a variable instead (PIP_CONFIG_FILE, npm_config_userconfig) is kept with
    the variable and shown where it is (:func:`named_files`)."""
    if manager == "npm":
        files = [(home / ".npmrc", ".npmrc")]
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME")
        config = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".config"
        files = [(config / "pip" / "pip.conf", ".config/pip/pip.conf"), (home / ".pip" / "pip.conf", ".pip/pip.conf")]
    return [(source, where) for source, where in files if source.is_file()]


#: The resolver's and the certificates' configuration, which may be links into a directory the
#: sandbox hides (WSL's /etc/resolv.conf -> /mnt/wsl/resolv.conf): their targets are shown.
NETWORK_CONFIG = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf", "/etc/ssl/certs")
_FILE_URL = re.compile(r"file://(/[^\s'\"]+)")


#: Settings naming a local index, a directory of wheels or a certificate by path (pip.conf).
_PATH_SETTING = re.compile(r"^\s*(?:find[-_]links|(?:extra[-_])?index[-_]url|cert|client[-_]cert)\s*[=:]\s*(.*)$", re.M)


def _file_urls(text: str) -> list[Path]:
    """The local paths a package manager's settings or variables name: ``file://`` URLs (a
    local index) and plain paths given to pip's find-links, index and certificate settings.
    A PEP 503 index named ``simple`` links to its files beside it (``../../files/x.whl``): its
    parent is shown whole."""
    from urllib.parse import unquote

    found = [Path(unquote(m.group(1))) for m in _FILE_URL.finditer(text)]
    found += [Path(v) for m in _PATH_SETTING.finditer(text) for v in m.group(1).split() if v.startswith("/")]
    return [path.parent if path.name == "simple" else path for path in found]


def named_files(manager: str) -> list[Path]:
    """What the install's kept variables name (PATH's directories, PIP_CONFIG_FILE, PIP_CERT,
    npm_config_cafile, SSL_CERT_FILE, ...), the local indexes (``file://``) they and the
    manager's settings files name, and the targets of the resolver's and certificates' links
    (:data:`NETWORK_CONFIG`): shown read-only wherever they are, even in a home directory (a
    ``~/.cargo/bin`` on PATH), but never a whole home.  A hunt found a ``file://`` index and
    WSL's resolver settings out of pip's sight once the sandbox hid /opt and /mnt."""
    homes = set(sandbox.hidden_roots())
    found: list[Path] = []
    texts: list[str] = []
    for key, value in install_env(Path("/"), manager).items():
        if key == "HOME":
            continue
        texts.append(value)
        found += [Path(part) for part in value.split(os.pathsep)] if "://" not in value else []
        if key.lower() in ("pip_config_file", "npm_config_userconfig"):
            texts.append(_small_text(Path(value)))
    texts += [_small_text(source) for source, _ in registry_settings(manager, Path(os.path.expanduser("~")))]
    found += [path for text in texts for path in _file_urls(text)]
    found += [Path(name).resolve() for name in NETWORK_CONFIG if Path(name).is_symlink()]
    paths = []
    for path in dict.fromkeys(found):
        with contextlib.suppress(OSError):
            if path.is_absolute() and path.exists() and path.resolve() not in homes:
                paths.append(path)
    return paths


def _small_text(path: Path, limit: int = 64 * 1024) -> str:
    """A settings file's text, if it is a small plain file; "" otherwise."""
    with contextlib.suppress(OSError, ValueError):
        if path.is_file() and path.stat().st_size <= limit:
            return path.read_text(encoding="utf-8", errors="replace")
    return ""


#: What an install keeps of our environment: its package manager's own settings, proxies and
#: certificates. Not the rest: tokens in the environment (GITHUB_TOKEN, AWS_*) are as much a
#: build script's to read as files are, and npm's settings (registry tokens) are not pip's.
INSTALL_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "LD_LIBRARY_PATH",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
MANAGER_ENV = {
    "pip": (("PIP_",), ("REQUESTS_CA_BUNDLE",)),
    "npm": (("npm_config_", "NPM_CONFIG_"), ("NODE_EXTRA_CA_CERTS",)),
}


def install_env(home: Path, manager: str) -> dict[str, str]:
    prefixes, names = MANAGER_ENV[manager]
    kept = (*INSTALL_ENV, *names)
    env = {k: v for k, v in os.environ.items() if k in kept or k.startswith(prefixes)}
    return {**env, "HOME": str(home)}


async def install_pypi(
    identifier: str, version: str | None, cache: Path, *, timeout: float, mode: str, extra: tuple[str, ...] = ()
) -> Installed:
    """``extra`` requirements are installed alongside (e.g. ``mcp<2`` for servers written for
    the 1.x SDK that do not pin it); such an install gets its own slot."""
    slot = _slot(cache, "pypi", identifier, version)
    if extra:
        slot = slot.with_name(slot.name + "+" + SAFE.sub("_", "+".join(extra)))
    async with _slot_lock(slot, timeout):
        return await _install_pypi(slot, identifier, version, timeout=timeout, mode=mode, extra=extra)


async def _install_pypi(
    slot: Path, identifier: str, version: str | None, *, timeout: float, mode: str, extra: tuple[str, ...]
) -> Installed:
    marker = slot / "launch.json"
    done = _finished(marker)
    if done is not None:
        return Installed(done, slot)
    # Venvs are not relocatable, so it is built at its final path; the marker written last
    # tells a finished install from one a crash interrupted (which is redone).

    async def fresh() -> None:
        _remove(slot)
        (slot / ".home").mkdir(parents=True)
        code, out = await _run([sys.executable, "-m", "venv", str(slot / "venv")], timeout)
        if code:
            raise InstallError(f"venv creation failed: {_last_error(out)}")

    try:
        await fresh()
        spec = f"{identifier}=={version}" if version and version != "latest" else identifier
        pip = [
            str(slot / "venv" / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
            # Wheels only: installing a wheel runs none of the package's code, building a source
            # distribution runs its build script, and an install has network (a review's build
            # script reached the local PostgreSQL over loopback and ran a command on the host).
            "--only-binary=:all:",
            spec,
            *extra,
        ]
        code, out = await _install(pip, timeout, slot, mode, "pip", fresh)
        if code and ("from versions: none" in out or "No matching distribution" in out):
            raise InstallError(
                f"pip install {spec} failed: no wheel of it or of a dependency for this Python and platform "
                "(or no such package); building from source would run the package's code with network access, "
                f"which installs never do ({_last_error(out)})"
            )
        if code:
            raise InstallError(f"pip install {spec} failed: {_last_error(out)}")
        scripts = console_scripts(slot / "venv", identifier)
    except BaseException:
        _remove(slot)
        raise
    if not scripts:
        _remove(slot)
        raise InstallError(f"{identifier} installs no console script to start")
    name = _pick(scripts, identifier)
    command = [str(slot / "venv" / "bin" / name)]
    _write_marker(marker, {"command": command, "scripts": scripts})
    return Installed(command, slot)


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def console_scripts(venv: Path, identifier: str) -> list[str]:
    """The console scripts the installed distribution ``identifier`` declares, read from its
    ``*.dist-info`` files by this process.  Never by starting the venv's Python: interpreter
    start-up runs every ``.pth`` file a package installed, and that would be a stranger's code
    running outside the sandbox (a review reproduced it).  What sandboxed pip wrote is a
    stranger's too, so this reads exactly two files itself, each only if it is a plain, small
    file when opened (importlib's own reader would follow a METADATA, or a PKG-INFO in its
    place, linked to ``/dev/zero`` or made a FIFO, and hang or fill this process)."""
    from configparser import ConfigParser, Error
    from email.parser import HeaderParser

    wanted = _normalised(identifier)
    for site in sorted((venv / "lib").glob("python*/site-packages")):
        for info in sorted(site.glob("*.dist-info")):
            if info.is_symlink():
                continue
            metadata = _read_plain(info / "METADATA")
            name = HeaderParser().parsestr(metadata).get("Name") if metadata else None
            if not isinstance(name, str) or _normalised(name) != wanted:
                continue
            points = ConfigParser(delimiters=("=",), interpolation=None, strict=False)
            points.optionxform = str  # type: ignore[assignment,method-assign]  # script names keep their case
            try:
                points.read_string(_read_plain(info / "entry_points.txt") or "")
            except Error:
                return []
            return sorted(points["console_scripts"]) if points.has_section("console_scripts") else []
    return []


def _finished(marker: Path) -> list[str] | None:
    """The command a finished install recorded, if its marker is a plain file of ours (what an
    install left at that name, a FIFO say, would hang or steer the crawler), else ``None``."""
    try:
        owner = os.stat(marker, follow_symlinks=False).st_uid
    except OSError:
        return None
    text = _read_plain(marker) if owner == os.getuid() else None
    try:
        command = json.loads(text or "null")["command"]
    except (ValueError, TypeError, KeyError):
        return None
    return command if isinstance(command, list) and all(isinstance(c, str) for c in command) else None


def _remove(tree: Path) -> None:
    """Remove an install's directory however deep it goes: ``shutil.rmtree`` recurses (on
    Python 3.11) and a package's thousand-deep directories made it raise; ``rm`` does not."""
    if tree.is_symlink() or tree.is_file():
        tree.unlink(missing_ok=True)
    elif tree.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(tree)], check=False, capture_output=True)


def _write_marker(marker: Path, data: dict[str, object]) -> None:
    """Write the finished-install marker as a new plain file: the install's uid could have left
    a link at its name, which writing through would aim at any file we may write."""
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out)


def _read_plain(path: Path, limit: int = 1 << 20) -> str | None:
    """The text of ``path`` if, when opened, it is a regular file (not a link, a FIFO or a
    device) of at most ``limit`` bytes; ``None`` otherwise."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace") if len(data) <= limit else None


def _pick(names: list[str], identifier: str) -> str:
    base = identifier.split("/")[-1].lower()
    for cond in (lambda n: n.lower() == base, lambda n: "mcp" in n.lower(), lambda n: True):
        for n in sorted(names):
            if cond(n):
                return n
    raise InstallError("no command")


async def install_npm(identifier: str, version: str | None, cache: Path, *, timeout: float, mode: str) -> Installed:
    slot = _slot(cache, "npm", identifier, version)
    async with _slot_lock(slot, timeout):
        return await _install_npm(slot, identifier, version, timeout=timeout, mode=mode)


async def _install_npm(slot: Path, identifier: str, version: str | None, *, timeout: float, mode: str) -> Installed:
    marker = slot / "launch.json"
    done = _finished(marker)
    if done is not None:
        return Installed(done, slot)

    async def fresh() -> None:
        _remove(slot)
        slot.mkdir(parents=True)
        (slot / ".home").mkdir()

    await fresh()
    spec = f"{identifier}@{version}" if version and version != "latest" else identifier
    npm = [
        "npm",
        "install",
        "--prefix",
        str(slot),
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--omit=dev",
        "--loglevel=error",
        "--cache",
        str(slot / ".home" / "npm-cache"),
        spec,
    ]
    try:
        if shutil.which("npm") is None:
            raise InstallError("npm is not installed on this machine")
        code, out = await _install(npm, timeout, slot, mode, "npm", fresh)
        if code:
            raise InstallError(f"npm install {spec} failed: {_last_error(out)}")
        meta = json.loads(_read_plain(slot / "node_modules" / identifier / "package.json") or "null")
        if not isinstance(meta, dict):
            raise InstallError(f"{identifier} installed no readable package.json")
    except BaseException:
        _remove(slot)
        raise
    bins = meta.get("bin")
    if isinstance(bins, str):
        bins = {identifier.split("/")[-1]: bins}
    if not isinstance(bins, dict) or not bins:
        _remove(slot)
        raise InstallError(f"{identifier} declares no bin to start")
    name = _pick(list(bins), identifier)
    script = (slot / "node_modules" / identifier / str(bins[name])).resolve()
    if not sandbox.is_under(script, slot.resolve()):
        _remove(slot)
        raise InstallError(f"{identifier}'s bin {name} points outside its install")
    command = ["node", str(script)]
    _write_marker(marker, {"command": command, "bins": bins})
    _remove(slot / ".home" / "npm-cache")
    return Installed(command, slot)

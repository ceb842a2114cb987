"""Running crawls on a schedule, in the foreground: ``--every 6h`` or a cron expression.

Each run is a separate ``catalog crawl`` process (Scrapy's reactor cannot start twice in
one process, and a crash must not end the schedule).  The crawl itself takes the lock, so
a scheduled run and a run by hand never overlap: the later one is reported and skipped.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from catalog.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_INTERVAL = 366 * 86400
#: (name, lowest, highest); a weekday of 0 or 7 is Sunday.
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))


def parse_interval(text: str) -> float:
    """``90s``, ``15m``, ``6h``, ``1d`` (or combinations like ``1h30m``) -> seconds."""
    parts = re.findall(r"(\d+)\s*([smhd])", text.strip().lower())
    if not parts or "".join(a + b for a, b in parts) != re.sub(r"\s+", "", text.strip().lower()):
        raise UsageError(f"--every takes a duration like 30m, 6h or 1d, not {text!r}")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError("--every must be longer than zero")
    if seconds > MAX_INTERVAL:
        raise UsageError(f"--every can be at most 366d, not {text!r}")
    return float(seconds)


def _field(spec: str, lo: int, hi: int, name: str) -> frozenset[int]:
    values: set[int] = set()
    for part in spec.split(","):
        m = re.fullmatch(r"(\*|\d+(?:-\d+)?)(?:/(\d+))?", part)
        if not m:
            raise UsageError(f"cron {name} field {spec!r} is not understood")
        rng, step = m.group(1), int(m.group(2) or 1)
        if rng == "*":
            start, end = lo, hi
        elif "-" in rng:
            start, end = (int(x) for x in rng.split("-"))
        else:
            start = end = int(rng)
            if m.group(2):
                end = hi
        if not (lo <= start <= end <= hi) or step < 1:
            raise UsageError(f"cron {name} field {spec!r} is out of range {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    minute: frozenset[int]
    hour: frozenset[int]
    day: frozenset[int]
    month: frozenset[int]
    weekday: frozenset[int]
    day_any: bool
    weekday_any: bool

    @classmethod
    def parse(cls, expr: str) -> Cron:
        parts = expr.split()
        if len(parts) != 5:
            raise UsageError(f"a cron expression has 5 fields (minute hour day month weekday), not {expr!r}")
        m, h, d, mo, wd = (_field(p, lo, hi, name) for p, (name, lo, hi) in zip(parts, _FIELDS, strict=True))
        wd = frozenset(0 if v == 7 else v for v in wd)
        # As Vixie cron: a day field that starts with "*" (also "*/2") does not restrict, so
        # the other day field alone decides.
        return cls(m, h, d, mo, wd, day_any=parts[2].startswith("*"), weekday_any=parts[4].startswith("*"))

    def matches(self, t: datetime) -> bool:
        weekday = (t.weekday() + 1) % 7  # cron: Sunday is 0
        day_ok = t.day in self.day
        wd_ok = weekday in self.weekday
        # cron's rule: when both day fields are restricted, either may match.
        days = day_ok and wd_ok if (self.day_any or self.weekday_any) else day_ok or wd_ok
        return t.minute in self.minute and t.hour in self.hour and t.month in self.month and days

    def next_after(self, t: datetime) -> datetime:
        candidate = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(366 * 24 * 60):
            if candidate.month not in self.month:
                candidate = (candidate.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if candidate.hour not in self.hour:
                candidate = candidate.replace(minute=0) + timedelta(hours=1)
                continue
            if self.matches(candidate):
                return candidate
            candidate += timedelta(minutes=1)
        raise UsageError("the cron expression never matches")


#: A crawl's exit status for a usage error (click): the arguments will not get better by waiting.
USAGE_ERROR = 2
#: How long a crawl gets to finish its run records and release its lock when the schedule is
#: stopped, before it is killed.
STOP_GRACE_SECONDS = 30.0
FORCE_AFTER_SECONDS = 5.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


def failure_reason(stderr: str, fallback: str) -> str:
    """The line that says why: our ``error: ...`` line, or the message inside click's usage box
    (its last line is the box's border), else the last line that has words."""
    lines = [ln.strip().strip("│╭╮╰╯─").strip() for ln in stderr.strip().splitlines()]
    errors = [ln for ln in lines if ln.lower().startswith("error:")]
    worded = [ln for ln in lines if any(c.isalnum() for c in ln)]
    return (errors or worded or [fallback])[-1]


class Stopped(Exception):
    """The schedule was asked to stop (SIGTERM, SIGINT, SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_with_parent() -> None:
    """In the crawl's process, before it runs: SIGTERM when the schedule dies, however it dies.
    Killed with SIGKILL (or by the OOM killer), the schedule left its crawl running in its own
    session, holding the lock, with no one to report it. SIGTERM is the crawl's graceful stop:
    its run is recorded as interrupted and the lock released."""
    import ctypes

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the schedule died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _run_crawl(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """One ``catalog crawl``, in a process group of its own. Asked to stop, the schedule passes
    SIGTERM on (Scrapy then stops taking requests), again after FORCE_AFTER_SECONDS (Scrapy's
    "send again to force": in-flight downloads are dropped) and kills the group after
    STOP_GRACE_SECONDS: a scheduler killed under a running crawl used to leave the crawl
    running, holding the lock, with no one to report it."""
    asked: list[tuple[int, float]] = []
    started: list[subprocess.Popen[str]] = []

    def signal_group(sig: int) -> None:
        if started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(started[0].pid, sig)

    def stop(signum: int, _frame: object) -> None:
        if not asked:
            asked.append((signum, time.monotonic()))
            signal_group(signal.SIGTERM)

    # Handlers first: a signal between starting the crawl and installing them orphaned it.
    # SIGHUP too: a closed terminal or ssh session ended the schedule and left the crawl.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "catalog", "crawl", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=_stop_with_parent,
        )
        started.append(proc)
        if asked:
            signal_group(signal.SIGTERM)
        out, err = _wait(proc, asked, signal_group)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if asked:
        raise Stopped(asked[0][0])
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _wait(
    proc: subprocess.Popen[str], asked: list[tuple[int, float]], signal_group: Callable[[int], None]
) -> tuple[str, str]:
    """The crawl's output once it ends; once a stop is ``asked``, SIGTERM again after
    FORCE_AFTER_SECONDS and SIGKILL after STOP_GRACE_SECONDS. Killed if we are interrupted."""
    forced = False
    try:
        while True:
            try:
                return proc.communicate(timeout=0.5)
            except subprocess.TimeoutExpired:
                if not asked:
                    continue
                waited = time.monotonic() - asked[0][1]
                if waited > STOP_GRACE_SECONDS:
                    signal_group(signal.SIGKILL)
                elif waited > FORCE_AFTER_SECONDS and not forced:
                    forced = True
                    signal_group(signal.SIGTERM)
    except BaseException:
        signal_group(signal.SIGKILL)
        proc.communicate()
        raise


def run_schedule(
    crawl_args: Sequence[str],
    *,
    every: float | None,
    cron: Cron | None,
    max_runs: int | None,
    echo: Callable[[str], None],
    now: Callable[[], datetime] = _utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run ``catalog crawl`` on the schedule (times in UTC); returns how many runs failed.
    ``--every`` runs at once and then every so often; a cron schedule waits for its first
    matching minute, as cron does. A usage error stops the schedule (it would fail every run)."""
    runs = failures = 0
    next_at = cron.next_after(now()) if cron else now()  # a cron that never matches fails here
    if cron:
        echo(f"first crawl at {next_at.isoformat(timespec='seconds')}")
    while max_runs is None or runs < max_runs:
        wait = (next_at - now()).total_seconds()
        if wait > 0:
            sleep(wait)
        started = now()
        echo(f"[{started.isoformat(timespec='seconds')}] crawl {runs + 1} starting")
        try:
            proc = _run_crawl(crawl_args)
        except Stopped as stop:
            echo(f"[{now().isoformat(timespec='seconds')}] stopped by {stop}; crawl {runs + 1} was interrupted")
            raise
        runs += 1
        summary = (proc.stdout.strip().splitlines() or [""])[-1]
        if proc.returncode == 0:
            echo(f"[{now().isoformat(timespec='seconds')}] crawl {runs} ok: {summary}")
        else:
            failures += 1
            reason = failure_reason(proc.stderr, summary or f"exit {proc.returncode}")
            echo(f"[{now().isoformat(timespec='seconds')}] crawl {runs} FAILED (exit {proc.returncode}): {reason}")
            if proc.returncode == USAGE_ERROR:
                raise UsageError(f"the crawl's arguments were refused ({reason}): schedule stopped")
        next_at = cron.next_after(now()) if cron else started + timedelta(seconds=every or 0)
        if max_runs is None or runs < max_runs:
            if next_at <= now():  # it said "next crawl at" a time already past
                echo("next crawl now (the last one took longer than --every)")
            else:
                echo(f"next crawl at {next_at.isoformat(timespec='seconds')}")
    return failures

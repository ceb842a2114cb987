"""Running crawls on a schedule, in the foreground: ``--every 6h`` or a cron expression.

Each run is a separate ``catalog crawl`` process (Scrapy's reactor cannot start twice in
one process, and a crash must not end the schedule).  The crawl itself takes the lock, so
a scheduled run and a run by hand never overlap: the later one is reported and skipped.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from catalog.errors import CatalogError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: (name, lowest, highest); a weekday of 0 or 7 is Sunday.
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))


def parse_interval(text: str) -> float:
    """``90s``, ``15m``, ``6h``, ``1d`` (or combinations like ``1h30m``) -> seconds."""
    parts = re.findall(r"(\d+)\s*([smhd])", text.strip().lower())
    if not parts or "".join(a + b for a, b in parts) != re.sub(r"\s+", "", text.strip().lower()):
        raise CatalogError(f"--every takes a duration like 30m, 6h or 1d, not {text!r}")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise CatalogError("--every must be longer than zero")
    return float(seconds)


def _field(spec: str, lo: int, hi: int, name: str) -> frozenset[int]:
    values: set[int] = set()
    for part in spec.split(","):
        m = re.fullmatch(r"(\*|\d+(?:-\d+)?)(?:/(\d+))?", part)
        if not m:
            raise CatalogError(f"cron {name} field {spec!r} is not understood")
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
            raise CatalogError(f"cron {name} field {spec!r} is out of range {lo}-{hi}")
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
            raise CatalogError(f"a cron expression has 5 fields (minute hour day month weekday), not {expr!r}")
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
        raise CatalogError("the cron expression never matches")


def run_schedule(
    crawl_args: Sequence[str],
    *,
    every: float | None,
    cron: Cron | None,
    max_runs: int | None,
    echo: Callable[[str], None],
    now: Callable[[], datetime] = datetime.now,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run ``catalog crawl`` on the schedule; returns how many runs failed."""
    runs = failures = 0
    next_at = now()
    while max_runs is None or runs < max_runs:
        wait = (next_at - now()).total_seconds()
        if wait > 0:
            sleep(wait)
        started = now()
        echo(f"[{started.isoformat(timespec='seconds')}] crawl {runs + 1} starting")
        proc = subprocess.run(
            [sys.executable, "-m", "catalog", "crawl", *crawl_args], capture_output=True, text=True, check=False
        )
        runs += 1
        summary = (proc.stdout.strip().splitlines() or [""])[-1]
        if proc.returncode == 0:
            echo(f"[{now().isoformat(timespec='seconds')}] crawl {runs} ok: {summary}")
        else:
            failures += 1
            reason = (proc.stderr.strip().splitlines() or [summary or f"exit {proc.returncode}"])[-1]
            echo(f"[{now().isoformat(timespec='seconds')}] crawl {runs} FAILED (exit {proc.returncode}): {reason}")
        next_at = cron.next_after(now()) if cron else started + timedelta(seconds=every or 0)
        if max_runs is None or runs < max_runs:
            echo(f"next crawl at {next_at.isoformat(timespec='seconds')}")
    return failures

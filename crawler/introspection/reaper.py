"""The process groups of strangers' code still running, killed when we exit however we exit.

Every server and every install starts in a process group of its own and is killed with its
group when its conversation ends, in a ``finally`` that survives cancellation. Two ways out
skip that ``finally``: a crawl forced to stop (a second Ctrl-C or SIGTERM stops the reactor,
and the coroutines still waiting on a server are never resumed) and a command ended by a
signal while a server is being asked. In the sandbox, bubblewrap's ``--die-with-parent``
takes the server down with us; without it (``--unsafe-no-sandbox``) a stranger's server was
left running after the crawl ended. So every group is remembered here while it lives, and
whatever is still remembered is killed at interpreter exit, or earlier by whoever knows the
conversations are over (a crawl, once its reactor has stopped).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal

_LIVE: set[int] = set()


def track(pgid: int) -> None:
    """Remember a process group we started (its leader's pid, from ``start_new_session``)."""
    _LIVE.add(pgid)


def untrack(pgid: int) -> None:
    """Forget a group its owner has killed (its number may be reused by an unrelated one)."""
    _LIVE.discard(pgid)


def kill_all() -> int:
    """SIGKILL every group still remembered; how many there were."""
    groups = list(_LIVE)
    _LIVE.clear()
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    return len(groups)


atexit.register(kill_all)

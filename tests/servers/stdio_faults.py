"""Misbehaving stdio servers for the tests: python stdio_faults.py MODE.

hang     reads requests and never answers (stuck in the handshake)
crash    prints a reason on stderr and exits 3 at once
garbage  answers every line with text that is not JSON-RPC
flood    writes to stdout without end and never a newline
babble   writes to stderr without end and never answers
orphan   starts a long sleep in the background, writes its pid to argv[2] and exits
"""

from __future__ import annotations

import sys
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "hang"
if mode == "crash":
    print("fatal: STRIPE_API_KEY is not set", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "garbage":
    for _line in sys.stdin:
        print("Welcome to my server! <<<not json>>>", flush=True)
    sys.exit(0)
if mode == "orphan":
    import subprocess
    from pathlib import Path

    child = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    Path(sys.argv[2]).write_text(str(child.pid))
    sys.exit(0)
if mode == "flood":
    chunk = b"x" * 65536
    while True:
        sys.stdout.buffer.write(chunk)
if mode == "babble":
    while True:
        sys.stderr.write("still starting... " * 4000 + "\n")
while True:  # hang
    sys.stdin.readline()
    time.sleep(0.1)

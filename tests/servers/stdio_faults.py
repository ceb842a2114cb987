"""Misbehaving stdio servers for the tests: python stdio_faults.py MODE.

hang     reads requests and never answers (stuck in the handshake)
crash    prints a reason on stderr and exits 3 at once
garbage  answers every line with text that is not JSON-RPC
flood    writes lines of noise to stdout without end
babble   writes to stderr without end and never answers
bigline  answers the first request with one 20 MB line
braces   answers the first request with a 3.6 MB line of 1.2 million empty objects
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
if mode in ("bigline", "braces"):
    sys.stdin.readline()
    body = "[" + ",".join(["{}"] * 1_200_000) + "]" if mode == "braces" else '"' + "x" * 20_000_000 + '"'
    sys.stdout.write('{"jsonrpc": "2.0", "id": 0, "result": ' + body + "}\n")
    sys.stdout.flush()
    while True:
        time.sleep(1)
if mode == "flood":
    chunk = b"x" * 65535 + b"\n"
    while True:
        sys.stdout.buffer.write(chunk)
if mode == "babble":
    while True:
        sys.stderr.write("still starting... " * 4000 + "\n")
while True:  # hang
    sys.stdin.readline()
    time.sleep(0.1)

"""A stdio MCP server that lists what a test tells it to: python stdio_listing.py SPEC

SPEC is JSON on the command line (the sandbox's uid may not read a test's files): either
{"tools": [...]}, listed as given, duplicates and odd names included; {"pages": N}, one
tool per page over N pages (``noop_0`` ... and ``run_shell`` on the last page); or
{"many": N}, N tools on one page without a cursor; {"probe": true}, one tool whose
description says what the server was started with (the variable PROBE and its address-space
limit); "info": N makes its name and an experimental capability N characters long, and
"instructions" is sent as the ``initialize`` result's instructions.  Written by
hand over JSON-RPC lines, not with the SDK, which would refuse such listings; importable (a
test packs this file into a wheel and calls :func:`serve`).
"""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import Any


def listing(spec: dict[str, Any], cursor: str | None) -> dict[str, Any]:
    """The ``tools/list`` result SPEC asks for, at ``cursor``."""
    if "pages" in spec:
        page, last = int(cursor or 0), spec["pages"] - 1
        tool = {"name": f"noop_{page}", "description": "Returns nothing.", "inputSchema": {"type": "object"}}
        if page == last:
            tool = {
                "name": "run_shell",
                "description": "Execute any shell command on the host.",
                "inputSchema": {"type": "object", "properties": {"command": {"type": "string"}}},
            }
        return {"tools": [tool], **({"nextCursor": str(page + 1)} if page < last else {})}
    if "many" in spec:
        return {"tools": [{"name": f"noop_{i}", "inputSchema": {"type": "object"}} for i in range(spec["many"])]}
    if spec.get("probe"):
        seen = f"probe={os.environ.get('PROBE')} as={resource.getrlimit(resource.RLIMIT_AS)[0]}"
        return {"tools": [{"name": "probe", "description": seen, "inputSchema": {"type": "object"}}]}
    return {"tools": spec["tools"]}


def serve(spec: dict[str, Any]) -> None:
    """Answer JSON-RPC lines on stdin until it closes."""
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "id" not in msg:
            continue
        if msg.get("method") == "initialize":
            result = {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "listing", "version": "1"},
            }
            if "instructions" in spec:  # what the server tells the model about using it
                result["instructions"] = spec["instructions"]
            if "info" in spec:  # {"info": N}: a server name and an experimental capability of N characters each
                result["serverInfo"]["name"] = "n" * spec["info"]
                result["capabilities"]["experimental"] = {"x": {str(i): "v" * spec["info"] for i in range(3)}}
        elif msg.get("method") == "tools/list":
            result = listing(spec, (msg.get("params") or {}).get("cursor"))
        else:
            error = {"code": -32601, "message": "no"}
            print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": error}), flush=True)
            continue
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))

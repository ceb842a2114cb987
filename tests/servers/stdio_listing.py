"""A stdio MCP server that lists what a test tells it to: python stdio_listing.py SPEC

SPEC is JSON on the command line (the sandbox's uid may not read a test's files): either
{"tools": [...]}, listed as given, duplicates and odd names included; {"pages": N}, one
tool per page over N pages (``noop_0`` ... and ``run_shell`` on the last page); or
{"many": N}, N tools on one page without a cursor; "info": N makes its name and an
experimental capability N characters long.  Written by
hand over JSON-RPC lines, not with the SDK, which would refuse such listings.
"""

from __future__ import annotations

import json
import sys

spec = json.loads(sys.argv[1])
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
        if "info" in spec:  # {"info": N}: a server name and an experimental capability of N characters each
            result["serverInfo"]["name"] = "n" * spec["info"]
            result["capabilities"]["experimental"] = {"x": {str(i): "v" * spec["info"] for i in range(3)}}
    elif msg.get("method") == "tools/list" and "pages" in spec:
        page, last = int((msg.get("params") or {}).get("cursor") or 0), spec["pages"] - 1
        tool = {"name": f"noop_{page}", "description": "Returns nothing.", "inputSchema": {"type": "object"}}
        if page == last:
            tool = {
                "name": "run_shell",
                "description": "Execute any shell command on the host.",
                "inputSchema": {"type": "object", "properties": {"command": {"type": "string"}}},
            }
        result = {"tools": [tool], **({"nextCursor": str(page + 1)} if page < last else {})}
    elif msg.get("method") == "tools/list" and "many" in spec:
        result = {"tools": [{"name": f"noop_{i}", "inputSchema": {"type": "object"}} for i in range(spec["many"])]}
    elif msg.get("method") == "tools/list":
        result = {"tools": spec["tools"]}
    else:
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "no"}}), flush=True)
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)

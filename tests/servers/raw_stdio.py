"""A hand-written stdio MCP server (no SDK) that declares what real servers do and the SDK
rejects: an inputSchema without "type": "object". Used to check that the catalogue records
such tools instead of losing the whole listing."""

from __future__ import annotations

import json
import sys

TOOLS = [
    {
        "name": "create_merge_request",
        "description": "Create a new merge request in a GitLab project",
        "inputSchema": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {"project_id": {"type": "string"}, "title": {"type": "string"}},
        },
    },
    {"name": "list_projects", "description": "List GitLab projects", "inputSchema": {"properties": {}}},
]

for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if "id" not in msg:
        continue  # a notification
    method = msg.get("method")
    if method == "initialize":
        result = {
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "raw-test", "version": "0.1.0"},
        }
        reply = {"jsonrpc": "2.0", "id": msg["id"], "result": result}
    elif method == "tools/list":
        reply = {"jsonrpc": "2.0", "id": msg["id"], "result": {"tools": TOOLS}}
    else:
        reply = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": f"no method {method}"}}
    print(json.dumps(reply), flush=True)

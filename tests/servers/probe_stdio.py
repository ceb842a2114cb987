"""A stdio MCP server that reports what the sandbox let it do, in its tool descriptions.

python probe_stdio.py PORT [SECRET_DIR]: tries a TCP connection to 127.0.0.1:PORT, checks HOME
and SECRET_DIR, tries to start 400 processes and to allocate 6 GiB; a second tool carries a
1 MB hostile description.  python probe_stdio.py many: serves 10,000 tools.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from mcp.server import MCPServer

server = MCPServer("probe", version="0.0.1")

if sys.argv[1:2] == ["many"]:
    for i in range(10_000):
        server.add_tool(lambda: "ok", name=f"tool_{i:05d}", description=f"Get record number {i} from the list")
else:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            network = "open"
    except OSError as exc:
        network = f"blocked ({type(exc).__name__})"
    secret = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.expanduser("~root"), ".ssh")
    try:
        secret_state = "visible" if os.listdir(secret) else "hidden"
    except OSError:
        secret_state = "hidden"
    children = []
    try:
        for _ in range(400):
            children.append(subprocess.Popen(["sleep", "30"]))
    except OSError:
        pass
    started = len(children)
    for child in children:
        child.kill()
        child.wait()
    try:
        block = bytearray(6 * 1024**3)
        memory = f"allocated {len(block)}"
        del block
    except MemoryError:
        memory = "limited"

    @server.tool(
        name="probe_report",
        description=f"network: {network}; home: {os.environ.get('HOME')}; secret: {secret_state}; "
        f"processes: {started}; memory: {memory}; uid: {os.getuid()}",
    )
    def report() -> str:
        return "ok"

    @server.tool(name="huge_description", description="Get the weather. " + ("lorem ipsum dolor " * 60_000))
    def huge() -> str:
        return "ok"


if __name__ == "__main__":
    server.run("stdio")

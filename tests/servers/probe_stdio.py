"""A stdio MCP server that reports what the sandbox let it see, in its tool descriptions.

python probe_stdio.py PORT [SECRET_DIR]: tries a TCP connection to 127.0.0.1:PORT and checks HOME and
~/.ssh; a second tool carries a 1 MB hostile description.
"""

from __future__ import annotations

import os
import socket
import sys

from mcp.server import MCPServer

port = int(sys.argv[1]) if len(sys.argv) > 1 else 9
try:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        network = "open"
except OSError as exc:
    network = f"blocked ({type(exc).__name__})"
ssh = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.expanduser("~root"), ".ssh")
ssh_state = "visible" if os.path.isdir(ssh) and os.listdir(ssh) else "hidden"

server = MCPServer("probe", version="0.0.1")


@server.tool(
    name="probe_report", description=f"network: {network}; home: {os.environ.get('HOME')}; root-ssh: {ssh_state}"
)
def report() -> str:
    return "ok"


@server.tool(name="huge_description", description="Get the weather. " + ("lorem ipsum dolor " * 60_000))
def huge() -> str:
    return "ok"


if __name__ == "__main__":
    server.run("stdio")

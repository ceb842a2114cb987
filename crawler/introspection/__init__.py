"""Live introspection: start a server (in a sandbox) or reach a remote, then
``initialize`` + ``tools/list`` with the official ``mcp`` SDK."""

"""mcp-catalog: the store, the policies and the command line around the crawler and classifier."""

__version__ = "0.1.0"

"""Docker's MCP catalogue: a checkout of the ``docker/mcp-registry`` repository.

Docker Desktop's MCP Toolkit lists the servers of that repository: ``servers/NAME/server.yaml``
(``type: server`` or ``poci``, a container image; ``type: remote``, an endpoint) and, for some,
``servers/NAME/tools.json`` with the tools Docker recorded, either as MCP definitions or in
Docker's own shape (``arguments: [{name, type, desc, optional}]``).  It is a git repository,
not an API: a team clones it (or keeps its own fork) and crawls the checkout,
``--source docker --source-url docker=PATH``, PATH being the checkout or its ``servers``
directory.

Each server is stored as ``docker/NAME``, apart from the server as other catalogues list it
(a catalogue's tool list is its claim).  Tools come from ``tools.json`` or the inline
``tools:`` of ``server.yaml``; none is ever run (an inline tool's ``container`` command is
not read).  A remote without tools is introspected live; a container image is recorded as
one this machine cannot run.  An empty ``tools.json`` says nothing (Docker writes ``[]`` for
servers it has not inspected), so the stored tools stay as they were.

The files are strangers' YAML: read with a safe loader that also refuses aliases (a few lines
of nested aliases expand to billions of nodes for whoever walks the result), within a size
limit per file, and only JSON values are kept.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from crawler.items import ServerItem, local_path
from crawler.spiders.glama import SEGMENT
from crawler.spiders.registry_api import EntryError, RegistryApiSpider, _str, _tools, load_page

PREFIX = "docker/"
TYPES = ("server", "poci", "remote")
TRANSPORTS = ("streamable-http", "sse")
#: Docker's largest server.yaml is a few kB and its largest tools.json under 200 kB.
MAX_YAML_BYTES = 1024 * 1024
MAX_TOOLS_BYTES = 16 * 1024 * 1024
#: Directories read at most (the catalogue holds a few hundred).
MAX_SERVERS = 100_000


class _NoAliases(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses aliases (``*name``)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(f"an alias at line {mark.line + 1} (aliases are not read)")
        return super().compose_node(parent, index)


def read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_NoAliases)


def json_only(value: Any, where: str) -> Any:
    """``value`` if it holds only what JSON can (YAML also gives dates, bytes and sets, which
    the store cannot keep); an EntryError naming the first thing that is not."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, (datetime, date, bytes, set, tuple)):
            raise EntryError(f"{at} is a YAML {type(item).__name__}, not JSON")
        if isinstance(item, Mapping):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise EntryError(f"{at} has a key that is not a string ({key!r:.40})")
                stack.append((inner, f"{at}.{key[:40]}"))
        elif isinstance(item, list):
            stack.extend((inner, f"{at}[{i}]") for i, inner in enumerate(item))
    return value


def _schema(arguments: Any, where: str) -> dict[str, Any]:
    """Docker's ``arguments`` list as an MCP ``inputSchema``: each argument a property (its
    ``type``, ``desc`` and ``items``), required unless ``optional``."""
    if not isinstance(arguments, list):
        raise EntryError(f"{where}.arguments is {type(arguments).__name__}, not a list")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for i, arg in enumerate(arguments):
        name = arg.get("name") if isinstance(arg, Mapping) else None
        if not isinstance(name, str) or not name:
            raise EntryError(f"{where}.arguments[{i}] is not an argument with a name")
        prop: dict[str, Any] = {"type": arg["type"] if isinstance(arg.get("type"), str) else "string"}
        if isinstance(arg.get("desc"), str):
            prop["description"] = arg["desc"]
        if isinstance(arg.get("items"), Mapping):
            prop["items"] = dict(arg["items"])
        properties[name] = prop
        if arg.get("optional") is not True:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def docker_tools(value: Any, where: str) -> list[dict[str, Any]] | None:
    """A tools list in any of Docker's shapes as MCP definitions; None when it gives none."""
    tools = _tools(value, where)
    if not tools:
        return None
    out = []
    for i, tool in enumerate(tools):
        at = f"{where}[{i}]"
        mcp = {k: tool[k] for k in ("name", "title", "description", "inputSchema", "annotations") if k in tool}
        if "inputSchema" not in tool:
            if isinstance(tool.get("parameters"), Mapping):  # an inline tool of server.yaml
                mcp["inputSchema"] = dict(tool["parameters"])
            elif "arguments" in tool:
                mcp["inputSchema"] = _schema(tool["arguments"], at)
        out.append(json_only(mcp, at))
    return out


def docker_entry(doc: Any, folder: str, tools_json: Any, source: str) -> ServerItem:
    """One ``server.yaml`` (and the directory's ``tools.json``, if any) -> ServerItem."""
    if not isinstance(doc, Mapping):
        raise EntryError(f"server.yaml is {type(doc).__name__}, not a mapping")
    name = _str(doc.get("name"), "name", required=True, limit=400)
    if not name or not SEGMENT.fullmatch(name):
        raise EntryError("name is not a server name")
    if name != folder:
        raise EntryError(f"name {name!r} is not its directory's ({folder!r})")
    kind = doc.get("type", "server")
    if kind not in TYPES:
        raise EntryError(f"type {str(kind)[:40]!r} is not one of {', '.join(TYPES)}")
    about: Mapping[str, Any] = doc["about"] if isinstance(doc.get("about"), Mapping) else {}
    source_block: Mapping[str, Any] = doc["source"] if isinstance(doc.get("source"), Mapping) else {}
    packages: list[dict[str, Any]] = []
    remotes: list[dict[str, Any]] = []
    version = None
    if kind == "remote":
        remote = doc.get("remote")
        if not isinstance(remote, Mapping):
            raise EntryError("a remote server without 'remote'")
        url = _str(remote.get("url"), "remote.url", required=True, limit=2000)
        transport = remote.get("transport_type", "streamable-http")
        if transport not in TRANSPORTS:
            raise EntryError(f"remote.transport_type {str(transport)[:40]!r} is not one of {', '.join(TRANSPORTS)}")
        remotes.append({"type": transport, "url": url})
    else:
        image = _str(doc.get("image"), "image", required=kind == "server", limit=500)
        if image:
            packages.append({"registryType": "oci", "identifier": image, "transport": {"type": "stdio"}})
        # The commit Docker built the image from: a new one is a new server version.
        commit = _str(source_block.get("commit"), "source.commit", limit=100)
        version = commit or None
    inline = docker_tools(doc.get("tools"), "server.yaml tools")
    listed = docker_tools(tools_json, "tools.json")
    return ServerItem(
        name=PREFIX + name,
        source=source,
        title=_str(about.get("title"), "about.title", limit=400),
        description=_str(about.get("description"), "about.description"),
        version=version,
        # A fork Docker builds from names the original as ``upstream``: the server is that one.
        repository_url=_str(source_block.get("upstream"), "source.upstream", limit=2000)
        or _str(source_block.get("project"), "source.project", limit=2000),
        packages=packages,
        remotes=remotes,
        tools=listed or inline,
    )


def _listed(folder: Path) -> bool:
    """Whether ``folder`` is a server's: its ``server.yaml`` is there, or the folder cannot be
    looked into (then reading it says why, as a malformed entry: a folder taken for no server
    had its server marked removed)."""
    try:
        if not folder.is_dir():
            return False
        os.lstat(folder / "server.yaml")
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return True


class DockerSpider(RegistryApiSpider):
    """A checkout of Docker's MCP catalogue, read directory by directory."""

    name = "docker"
    follows_cursors = False

    def __init__(self, base_url: str | None = None, **kwargs: Any) -> None:
        local = local_path(base_url) if base_url else None
        # Absolute, symlinks kept (a mounted checkout may be swapped under its name).
        self.root = Path(os.path.abspath(local)) if local else None
        self.real_root = self.root
        super().__init__(base_url=self.root.as_uri() if self.root else base_url, **kwargs)

    def servers_dir(self) -> Path | None:
        if self.root is None:
            self.note_error(f"{self.base_url or 'no catalogue'}: not a directory (a checkout of docker/mcp-registry)")
            return None
        for candidate in (self.root / "servers", self.root):
            try:
                if candidate.is_dir() and any(_listed(d) for d in candidate.iterdir()):
                    return candidate
            except OSError as exc:
                self.note_error(f"{candidate}: {exc.strerror or exc}")
                return None
        self.note_error(f"{self.root}: no servers/NAME/server.yaml here (a checkout of docker/mcp-registry?)")
        return None

    async def start(self) -> AsyncIterator[Any]:
        servers = self.servers_dir()
        if servers is None or self.root is None:
            return
        try:
            self.real_root = self.root.resolve()
            folders = sorted(d for d in servers.iterdir() if _listed(d))
        except (OSError, RuntimeError) as exc:
            self.note_error(f"{servers}: {getattr(exc, 'strerror', None) or exc}")
            return
        if len(folders) > MAX_SERVERS:
            self.note_error(f"{servers}: {len(folders):,} servers, more than {MAX_SERVERS:,}")
            return
        self.count_page()
        for folder in folders:
            item = self.read_server(folder)
            if item is not None:
                yield item

    def read_server(self, folder: Path) -> ServerItem | None:
        """One listed server's directory.  Whatever goes wrong reading it is that server's
        (malformed, which removes nothing), except the directory vanishing: then the checkout
        changed under the crawl, and the listing is not complete."""
        spec, tools = folder / "server.yaml", folder / "tools.json"
        try:
            try:
                os.lstat(spec)
            except (FileNotFoundError, NotADirectoryError):
                self.note_error(f"{folder.name[:100]}: gone during the crawl (the checkout changed)")
                return None
            doc = read_yaml(self._read(self._inside(spec), MAX_YAML_BYTES).decode("utf-8-sig"))
            listed = None
            if os.path.lexists(tools):
                listed = self._load_json(self._read(self._inside(tools), MAX_TOOLS_BYTES))
            return docker_entry(doc, folder.name, listed, self.name)
        except EntryError as exc:
            self.note_malformed(f"{folder.name[:100]}: {exc}")
        except (yaml.YAMLError, RecursionError) as exc:
            self.note_malformed(f"{folder.name[:100]}: server.yaml is not YAML we read ({str(exc)[:200]})")
        except (OSError, UnicodeDecodeError) as exc:
            self.note_malformed(f"{folder.name[:100]}: {getattr(exc, 'strerror', None) or exc}")
        except Exception as exc:  # a stranger's file: whatever the YAML library raises is this entry's
            self.note_malformed(f"{folder.name[:100]}: unreadable ({type(exc).__name__}: {str(exc)[:200]})")
        return None

    def _inside(self, path: Path) -> Path:
        """``path``, a regular file inside the checkout: a git checkout may hold symlinks, and
        one to ``/etc/shadow`` or another user's file must not be read into the catalogue."""
        real = path.resolve()
        if self.real_root is None or not real.is_relative_to(self.real_root):
            raise EntryError(f"{path.name} links out of the checkout")
        if not real.is_file():
            raise EntryError(f"{path.name} is not a file")
        return real

    @staticmethod
    def _read(path: Path, limit: int) -> bytes:
        size = path.stat().st_size
        if size > limit:
            raise EntryError(f"{path.name} is {size:,} bytes, more than {limit:,}")
        with path.open("rb") as handle:  # a file that grew since: still no more than the limit
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise EntryError(f"{path.name} is more than {limit:,} bytes")
        return data

    @staticmethod
    def _load_json(data: bytes) -> Any:
        """tools.json, bounded as a catalogue page is (a million objects and arrays at most,
        counted before parsing)."""
        try:
            return load_page(data)
        except (ValueError, RecursionError) as exc:
            raise EntryError(f"tools.json is not JSON we read ({type(exc).__name__}: {str(exc)[:200]})") from None

"""Docker's MCP catalogue (a checkout of docker/mcp-registry): read field by field, refused
where it is hostile, and crawled as a user does, with a remote introspected live on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from scrapy.utils.test import get_crawler

from crawler.spiders.docker import MAX_YAML_BYTES, DockerSpider, docker_entry, read_yaml
from crawler.spiders.registry_api import EntryError
from tests.conftest import ROOT, run_cli
from tests.test_catalogues import CANCEL, READ_FILE, crawl, stats

IMAGE_YAML = """\
name: files
image: mcp/files
type: server
meta:
  category: productivity
about:
  title: Files
  description: Read and write files
source:
  project: https://github.com/example/files
  commit: 0123456789abcdef
"""
#: Docker's own shape: arguments with name, type, desc, optional and items.
DOCKER_TOOLS = [
    {
        "name": "read_file",
        "description": "Read a file",
        "arguments": [
            {"name": "path", "type": "string", "desc": "The file to read"},
            {
                "name": "encodings",
                "type": "array",
                "desc": "Encodings to try",
                "optional": True,
                "items": {"type": "string"},
            },
        ],
    },
    {"name": "list_roots", "description": "List the roots"},
]
INLINE_YAML = """\
name: curl
type: poci
about:
  title: curl
source:
  project: https://github.com/curl/curl
tools:
  - name: curl
    description: Run a curl command.
    parameters:
      type: object
      properties:
        args:
          type: array
          items:
            type: string
      required: [args]
    container:
      image: alpine/curl
      command: ["{{args|into}}"]
"""


def remote_yaml(name: str, url: str, transport: str = "streamable-http") -> str:
    return (
        f"name: {name}\ntype: remote\nabout:\n  title: {name}\n"
        f"remote:\n  transport_type: {transport}\n  url: {url}\nsource:\n  project: https://github.com/example/{name}\n"
    )


def checkout(root: Path, servers: dict[str, tuple[str, Any]]) -> Path:
    """A docker/mcp-registry checkout: servers/NAME/server.yaml and, where given, tools.json."""
    for name, (spec, tools) in servers.items():
        folder = root / "servers" / name
        folder.mkdir(parents=True)
        (folder / "server.yaml").write_text(spec)
        if tools is not None:
            (folder / "tools.json").write_text(tools if isinstance(tools, str) else json.dumps(tools))
    return root


def items_of(path: Path) -> tuple[list[Any], DockerSpider]:
    spider = DockerSpider.from_crawler(get_crawler(DockerSpider), base_url=str(path))

    async def collect() -> list[Any]:
        return [item async for item in spider.start()]

    return asyncio.run(collect()), spider


def test_docker_entries_are_read_field_by_field() -> None:
    item = docker_entry(read_yaml(IMAGE_YAML), "files", DOCKER_TOOLS, "docker")
    assert item.name == "docker/files" and item.title == "Files" and item.description == "Read and write files"
    assert item.version == "0123456789abcdef" and item.repository_url == "https://github.com/example/files"
    # Docker builds some servers from its own fork: the original names the server.
    fork = IMAGE_YAML.replace("  commit:", "  upstream: https://github.com/original/files\n  commit:")
    assert docker_entry(read_yaml(fork), "files", None, "docker").repository_url == "https://github.com/original/files"
    assert item.packages == [{"registryType": "oci", "identifier": "mcp/files", "transport": {"type": "stdio"}}]
    assert item.remotes == []
    assert item.tools is not None
    read, roots = item.tools
    assert read["inputSchema"] == {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "The file to read"},
            "encodings": {"type": "array", "description": "Encodings to try", "items": {"type": "string"}},
        },
        "required": ["path"],
    }
    assert roots == {"name": "list_roots", "description": "List the roots"}
    # MCP definitions pass as they are; inline tools of server.yaml give their parameters.
    assert docker_entry(read_yaml(IMAGE_YAML), "files", [READ_FILE], "docker").tools == [READ_FILE]
    curl = docker_entry(read_yaml(INLINE_YAML), "curl", None, "docker")
    assert curl.packages == [] and curl.tools is not None
    assert curl.tools[0]["inputSchema"]["required"] == ["args"] and "container" not in curl.tools[0]
    remote = docker_entry(read_yaml(remote_yaml("astro", "https://mcp.example.com/mcp", "sse")), "astro", [], "docker")
    assert remote.remotes == [{"type": "sse", "url": "https://mcp.example.com/mcp"}] and remote.version is None
    assert remote.tools is None  # [] is Docker's "not inspected": the stored tools stay


@pytest.mark.parametrize(
    ("spec", "folder", "tools", "reason"),
    [
        (IMAGE_YAML, "other", None, "is not its directory's"),
        (IMAGE_YAML.replace("type: server", "type: plugin"), "files", None, "type 'plugin'"),
        (IMAGE_YAML.replace("image: mcp/files\n", ""), "files", None, "missing image"),
        ("name: r\ntype: remote\n", "r", None, "without 'remote'"),
        (remote_yaml("r", "https://x.test/mcp", "stdio"), "r", None, "transport_type 'stdio'"),
        ("- a list\n", "files", None, "not a mapping"),
        ("name: a/b\n", "a/b", None, "not a server name"),
        (IMAGE_YAML, "files", [{"description": "no name"}], "tools.json[0] is not a tool with a name"),
        (IMAGE_YAML, "files", {"tools": []}, "tools.json is dict, not a list"),
        (IMAGE_YAML, "files", [{"name": "t", "arguments": [{"type": "string"}]}], "arguments[0] is not an argument"),
        (IMAGE_YAML.replace("  title: Files", "  title: 2024-01-01"), "files", None, "about.title is date"),
        (
            INLINE_YAML.replace("      required: [args]", "      default: 2024-01-01"),
            "curl",
            None,
            "is a YAML date, not JSON",
        ),
    ],
)
def test_a_malformed_docker_entry_says_why(spec: str, folder: str, tools: Any, reason: str) -> None:
    with pytest.raises(EntryError, match=reason.replace("(", r"\(").replace("[", r"\[")):
        docker_entry(read_yaml(spec), folder, tools, "docker")


def test_yaml_aliases_are_refused() -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b]\n"
    with pytest.raises(yaml.YAMLError, match="alias"):
        read_yaml(laughs)


def test_a_checkout_is_read_server_by_server(tmp_path: Path) -> None:
    root = checkout(
        tmp_path / "checkout",
        {
            "files": (IMAGE_YAML, DOCKER_TOOLS),
            "curl": (INLINE_YAML, None),
            "broken": ("name: broken\ntype: [\n", None),
            "badjson": (IMAGE_YAML.replace("files", "badjson"), "[{"),
            "huge": (IMAGE_YAML.replace("files", "huge") + "#" * MAX_YAML_BYTES, None),
        },
    )
    (root / "servers" / "notes").mkdir()  # a directory without server.yaml is no server
    (root / "servers" / "README.md").write_text("not a server")
    fifo = root / "servers" / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "server.yaml")  # never opened: reading it would block the crawl
    # Links out of the checkout are not followed (a clone may hold any symlink).
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps([{"name": "secret_tool", "description": "TOPSECRET"}]))
    linked = root / "servers" / "linked"
    linked.mkdir()
    (linked / "server.yaml").write_text(IMAGE_YAML.replace("files", "linked"))
    (linked / "tools.json").symlink_to(outside)
    shadow = root / "servers" / "shadow"
    shadow.mkdir()
    (shadow / "server.yaml").symlink_to("/etc/passwd")
    # A YAML integer Python will not convert stopped the whole crawl.
    bigint = root / "servers" / "bigint"
    bigint.mkdir()
    (bigint / "server.yaml").write_text(IMAGE_YAML.replace("files", "bigint") + "extra: " + "9" * 5_000 + "\n")
    (root / "servers" / "dir" / "server.yaml").mkdir(parents=True)
    for base in (root, root / "servers"):
        items, spider = items_of(base)
        assert [i.name for i in items] == ["docker/curl", "docker/files"]
        assert spider.pages == 1 and spider.errors == []
        reasons = dict(r.split(": ", 1) for r in spider.malformed)
        assert sorted(reasons) == ["badjson", "bigint", "broken", "dir", "fifo", "huge", "linked", "shadow"], reasons
        assert reasons["badjson"].startswith("tools.json is not JSON")
        assert reasons["bigint"].startswith("unreadable (ValueError")
        assert reasons["broken"].startswith("server.yaml is not YAML")
        assert reasons["huge"].startswith("server.yaml is") and "more than" in reasons["huge"]
        assert reasons["dir"] == reasons["fifo"] == "server.yaml is not a file"
        assert reasons["linked"] == "tools.json links out of the checkout"
        assert reasons["shadow"] == "server.yaml links out of the checkout"
    # A server directory gone between the listing and its reading: the checkout changed under
    # the crawl, so the listing is incomplete (it marked every later server removed).
    gone = root / "servers" / "curl"
    for f in gone.iterdir():
        f.unlink()
    gone.rmdir()
    assert spider.read_server(gone) is None and spider.errors == ["curl: gone during the crawl (the checkout changed)"]
    _, empty = items_of(root / "servers" / "notes")
    assert empty.errors and "no servers/NAME/server.yaml here" in empty.errors[0]


@pytest.mark.live
def test_docker_crawl_stores_tools_and_introspects_remotes(trading_server: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    root = checkout(
        tmp_path / "mcp-registry",
        {
            "files": (IMAGE_YAML, DOCKER_TOOLS),
            "trader": (IMAGE_YAML.replace("files", "trader"), [CANCEL]),
            "live": (remote_yaml("live", f"{trading_server}/mcp"), None),
            "imageonly": (IMAGE_YAML.replace("files", "imageonly"), []),
        },
    )
    out = crawl(db, "--source", "docker", "--source-url", f"docker={root}")
    assert out.returncode == 0, out.stderr
    # An image is not started here: skipped, not an introspection failure (the catalogue is
    # mostly images, which read as hundreds of failures on every crawl).
    assert "0 introspection failures, 1 not started (nothing this machine runs" in out.stdout, out.stdout
    s = stats(db)
    assert s["servers"] == 4 and s["introspection"] == {"ok": 1, "skipped": 1}, s
    live = json.loads(run_cli("server", "docker/live", "--format", "json", "--db", db).stdout)
    assert live["tools"]["withdraw_funds"] == "critical" and live["tools_listed_by"] == "server"
    files = json.loads(run_cli("server", "docker/files", "--format", "json", "--db", db).stdout)
    assert set(files["tools"]) == {"read_file", "list_roots"} and files["tools_listed_by"] == "catalogue"
    shown = json.loads(run_cli("show", "read_file", "--server", "docker/files", "--db", db).stdout)
    assert shown["definition"]["inputSchema"]["required"] == ["path"]
    cancel = ("recommend", "BinanceFuturesCancelBatchOrders", "--server", "docker/trader", "--format", "json")
    rec = json.loads(run_cli(*cancel, "--db", db).stdout)
    assert rec["tools"]["BinanceFuturesCancelBatchOrders"]["deny_if"][0]["conditions"] == []
    # A server gone from the checkout is removed by the next complete crawl.
    for f in (root / "servers" / "trader").iterdir():
        f.unlink()
    (root / "servers" / "trader").rmdir()
    again = crawl(db, "--source", "docker", "--source-url", f"docker={root}", "--no-introspect")
    assert again.returncode == 0, again.stderr
    assert stats(db)["servers"] == 3
    assert "docker/trader" in json.loads(run_cli("diff", "--format", "json", "--db", db).stdout)["removed_servers"]
    # Nothing else may write under docker/.
    named = run_cli("introspect", "--name", "docker/mine", "--db", db, "--", "true")
    assert named.returncode == 2 and "catalogue records" in named.stderr


def test_a_docker_checkout_is_checked_before_anything_runs(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    file = tmp_path / "registry.json"
    file.write_text("{}")
    for args, reason in [
        (("--source", "docker"), "the docker source needs its checkout"),
        (("--source", "docker", "--source-url", "docker=https://github.com/docker/mcp-registry"), "is not a directory"),
        (("--source", "docker", "--source-url", f"docker={file}"), "is not a directory"),
    ]:
        out = crawl(db, *args)
        assert out.returncode == 2 and reason in out.stderr and out.stderr.strip().count("\n") == 0, (args, out)
    # Missing for now (a checkout being replaced): this run fails, a schedule goes on.
    gone = crawl(db, "--source", "docker", "--source-url", f"docker={tmp_path / 'gone'}")
    assert gone.returncode == 1 and "not a directory" not in gone.stderr, gone


READ_CHECKOUT = """
import asyncio, json, sys
from scrapy.utils.test import get_crawler
from crawler.spiders.docker import DockerSpider
spider = DockerSpider.from_crawler(get_crawler(DockerSpider), base_url=sys.argv[1])
async def collect():
    return [item.name async for item in spider.start()]
names = asyncio.run(collect())
print(json.dumps({"names": names, "malformed": spider.malformed, "errors": spider.errors}))
"""


def test_a_folder_that_cannot_be_read_is_malformed_not_gone(tmp_path: Path) -> None:
    """`lexists` says False for a folder it may not look into: the server was taken for no
    server and marked removed by a complete listing."""
    root = checkout(
        tmp_path / "checkout",
        {"aaa": (IMAGE_YAML.replace("files", "aaa"), None), "bbb": (IMAGE_YAML.replace("files", "bbb"), None)},
    )
    locked = root / "servers" / "bbb"
    locked.chmod(0)
    try:
        # As root, permissions bind only without the capabilities that bypass them.
        drop = (
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
            if os.geteuid() == 0
            else []
        )
        out = subprocess.run(
            [*drop, sys.executable, "-c", READ_CHECKOUT, str(root)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
    finally:
        locked.chmod(0o755)
    assert out.returncode == 0, out.stderr
    read = json.loads(out.stdout.strip().splitlines()[-1])
    assert read["names"] == ["docker/aaa"] and read["errors"] == []
    assert len(read["malformed"]) == 1 and read["malformed"][0].startswith("bbb: ")

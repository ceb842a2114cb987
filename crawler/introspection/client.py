"""Talking MCP to one server with the official SDK, bounded in time and size.

Every failure mode becomes an ``IntrospectionResult`` with a one-line reason: a server
that hangs mid-handshake (timeout), exits at once (crashed, with its last stderr line),
wants credentials (auth_required), or prints garbage (error).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio

from crawler.introspection.result import IntrospectionResult

_INPUT_VALUE = re.compile(r"input_value='([^']{0,80})")
MAX_TOOLS = 20_000
#: Bytes a remote server's answers may total: the crawler runs outside the sandbox, so a
#: hostile remote must not be able to fill its memory (a review sent a 1.5 GB description;
#: the largest real listing seen is a few MB).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: JSON objects and arrays in one answer (an SSE stream is one answer): parsed, 60 MB of empty
#: objects took 5 GB, so they are counted as the bytes arrive (as for stdio messages).
MAX_RESPONSE_CONTAINERS = 1_000_000
MAX_PAGES = 500
#: Characters of a server's ``instructions`` kept: the classifier reads a description up to
#: the same length (classifier.findings.DESCRIPTION_LIMIT) and calls anything longer poisoning.
INSTRUCTIONS_LIMIT = 150_000
CLIENT_NAME = "mcp-catalog"


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for sub in exc.exceptions:
            out.extend(_leaves(sub))
        return out
    return [exc]


#: How much of a server's own description of itself (name, version, capabilities) is kept per
#: attempt: every attempt is stored, and a hunt's 5 MB server name grew the catalogue by 10 MB
#: per run.  Real servers say a few hundred bytes.
INFO_TEXT, INFO_ITEMS, INFO_DEPTH = 1_000, 100, 8


def bounded(value: Any, depth: int = 0) -> Any:
    """``value`` (JSON) with every string cut at ``INFO_TEXT`` characters, every object and list
    at ``INFO_ITEMS`` entries and nesting at ``INFO_DEPTH`` levels (deeper is ``"…"``)."""
    if isinstance(value, str):
        return value if len(value) <= INFO_TEXT else value[: INFO_TEXT - 1] + "…"
    if depth >= INFO_DEPTH and isinstance(value, dict | list):
        return "…"
    if isinstance(value, dict):
        return {bounded(str(k)): bounded(v, depth + 1) for k, v in list(value.items())[:INFO_ITEMS]}
    if isinstance(value, list):
        return [bounded(v, depth + 1) for v in value[:INFO_ITEMS]]
    return value


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """Map an exception (or exception group) to (outcome, one-line reason)."""
    leaves = _leaves(exc)
    for leaf in leaves:
        status = getattr(getattr(leaf, "response", None), "status_code", None)
        if status in (401, 403):
            return "auth_required", f"the server requires authentication (HTTP {status})"
        if status is not None:
            return "error", f"HTTP {status} from the server"
    if isinstance(exc, ProtocolNoise):
        return "error", str(exc)
    inward = next((e for e in leaves if isinstance(e, PrivateRemote)), None)
    if inward is not None:
        return "refused", str(inward)
    leaf = next((e for e in leaves if not isinstance(e, anyio.get_cancelled_exc_class())), leaves[0])
    name = type(leaf).__name__
    text = str(leaf) or name
    if name == "MCPError" and "connection closed" in text.lower():
        return "crashed", "the server exited or closed stdout before answering"
    if isinstance(leaf, TimeoutError):
        return "timeout", "timed out"
    if "Connect" in name or isinstance(leaf, ConnectionError):
        return "error", f"connection failed: {_one_line(text)}"
    if isinstance(leaf, anyio.ClosedResourceError | anyio.EndOfStream | anyio.BrokenResourceError | BrokenPipeError):
        return "crashed", "the server closed the connection"
    return "error", f"{name}: {_one_line(text)}"


def _tool_json(tool: Any) -> dict[str, Any]:
    data = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
    keep = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
    return {k: data[k] for k in keep if k in data}


async def _list_all_tools(client: Any, result: IntrospectionResult) -> list[dict[str, Any]]:
    """Page through tools/list.

    Real servers declare schemas the SDK rejects (an inputSchema without ``"type":
    "object"`` fails its validation, and with it the whole listing). A catalogue must record
    what servers really declare, so such a listing is fetched again unvalidated, and the
    attempt says so.
    """
    from pydantic import ValidationError

    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = _Pages()
    try:
        for _ in range(MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(_tool_json(t) for t in page.tools)
            cursor = page.next_cursor
            if not pages.more(cursor, len(tools)):
                break
        pages.end(result, cursor, len(tools))
    except ValidationError as exc:
        raw = getattr(getattr(client.session, "_dispatcher", None), "send_raw_request", None)
        if raw is None:  # an SDK without the raw path: report the validation error
            raise
        result.server_info["listing_invalid"] = _one_line(str(exc), 300)
        return _named(await _list_raw(raw, result), result)
    return _named(tools[:MAX_TOOLS], result)


def _named(tools: list[dict[str, Any]], result: IntrospectionResult) -> list[dict[str, Any]]:
    """The tools a catalogue can key: a tool with a blank name cannot be called, recommended
    or told apart from another, so it is left out and counted (``tools_without_name``)."""
    named = [t for t in tools if isinstance(t.get("name"), str) and t["name"].strip()]
    if len(named) < len(tools):
        result.server_info["tools_without_name"] = len(tools) - len(named)
    return named


async def _list_raw(send_raw_request: Any, result: IntrospectionResult) -> list[dict[str, Any]]:
    keep = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
    tools: list[dict[str, Any]] = []
    cursor: Any = None
    pages = _Pages()
    for _ in range(MAX_PAGES):
        page = await send_raw_request("tools/list", {"cursor": cursor} if cursor else None, {})
        listed = page.get("tools") if isinstance(page, dict) else None
        for t in listed if isinstance(listed, list) else []:
            if isinstance(t, dict) and isinstance(t.get("name"), str):
                tools.append({k: t[k] for k in keep if k in t})
        cursor = page.get("nextCursor") if isinstance(page, dict) else None
        if not pages.more(cursor, len(tools)):
            break
    pages.end(result, cursor, len(tools))
    return tools[:MAX_TOOLS]


class _Pages:
    """The cursors of one tools/list listing (validated by the SDK or raw): when to ask for
    the next page, and whether the listing ended cut."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.repeated = False

    def more(self, cursor: Any, listed: int) -> bool:
        """Whether to ask for the page ``cursor`` names: a string not seen before, with
        ``listed`` tools still under the cap."""
        self.repeated = isinstance(cursor, str) and cursor in self.seen
        if not isinstance(cursor, str) or not cursor or listed >= MAX_TOOLS or self.repeated:
            return False
        self.seen.add(cursor)
        return True

    def end(self, result: IntrospectionResult, cursor: Any, listed: int) -> None:
        """After the last page asked for: more announced (a cursor, even one not a string) or
        more listed than the cap keeps is a cut listing, stored as incomplete (a cut listing
        was stored whole and "ok", its unseen tools enabled in Codex, and those stored before
        past the cap were marked removed)."""
        if (cursor is None or cursor == "") and listed <= MAX_TOOLS:
            return
        why = (
            "the server repeated a cursor"
            if self.repeated
            else f"stopped at {min(listed, MAX_TOOLS):,} tools / {MAX_PAGES} pages"
        )
        result.server_info["listing_cut"] = why


async def _session(server: Any, result: IntrospectionResult, timeout: float) -> None:
    from mcp import Client
    from mcp_types import Implementation

    noise: list[str] = []
    refused: list[RefusedAnswer] = []

    async def on_message(message: Any) -> None:
        # Transport-level exceptions arrive here: lines on stdout that are not JSON-RPC, and
        # (over SSE) an answer cut off for its size, which is what the attempt failed of.
        if isinstance(message, RefusedAnswer):
            refused.append(message)
        elif isinstance(message, Exception) and len(noise) < 5:
            found = _INPUT_VALUE.search(str(message))
            noise.append(_one_line(f"got {found.group(1)!r}" if found else type(message).__name__, 160))

    try:
        with anyio.fail_after(timeout):
            async with Client(
                server,
                client_info=Implementation(name=CLIENT_NAME, version="0.1.0"),
                read_timeout_seconds=timeout,
                cache=None,
                message_handler=on_message,
            ) as client:
                result.protocol_version = client.protocol_version
                info = client.server_info
                result.server_info = bounded(info.model_dump(mode="json", exclude_none=True)) if info else {}
                caps = client.server_capabilities
                result.server_info["capabilities"] = (
                    bounded(caps.model_dump(mode="json", exclude_none=True)) if caps else {}
                )
                if client.instructions:
                    # Scanned for poisoning as a description is (within the same cap); the
                    # length says how much a hostile server sent past it.
                    result.server_info["instructions"] = client.instructions[:INSTRUCTIONS_LIMIT]
                    if len(client.instructions) > INSTRUCTIONS_LIMIT:
                        result.server_info["instructions_length"] = len(client.instructions)
                result.tools = await _list_all_tools(client, result)
    except BaseException as exc:
        # What the server did explains its failure, never a stop from outside: a cancelled
        # crawl must stay cancelled, not become the server's error.
        if refused and not _from_outside(exc):
            raise refused[0] from exc
        if noise and not _from_outside(exc):
            raise ProtocolNoise(f"the server wrote output that is not JSON-RPC ({noise[0]})") from exc
        raise
    if noise:
        result.server_info["stdout_noise"] = noise


def _from_outside(exc: BaseException) -> bool:
    """An interrupt, an exit or a cancellation from outside: the caller's to handle, not a
    failure of the server's to record."""
    return isinstance(exc, KeyboardInterrupt | SystemExit | anyio.get_cancelled_exc_class())


class ProtocolNoise(Exception):
    """The server answered with garbage instead of JSON-RPC."""


async def introspect_stdio(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 30.0,
    target: str | None = None,
    pass_fds: Sequence[int] = (),
) -> IntrospectionResult:
    """Start ``command`` as a stdio server (already wrapped in a sandbox by the caller, which
    may need ``pass_fds`` open in it)."""
    from crawler.introspection.stdio import capped_stdio_client

    _short_shutdown()
    result = IntrospectionResult("stdio", target or " ".join(command), "ok")
    started = time.monotonic()
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as errlog:
        try:
            server = capped_stdio_client(command, env=env or {}, cwd=cwd, errlog=errlog, pass_fds=pass_fds)
            await _session(server, result, timeout)
        except BaseException as exc:
            if _from_outside(exc):
                raise
            result.outcome, result.error = describe_failure(exc)
            if isinstance(exc, FileNotFoundError) or any(isinstance(e, FileNotFoundError) for e in _leaves(exc)):
                result.outcome, result.error = "error", f"command not found: {command[0]}"
            elif result.outcome == "timeout":
                result.error = f"no answer within {timeout:g}s (hung during initialize or tools/list)"
            tail = _stderr_tail(errlog)
            missing = _NOT_EXECUTED.search(tail)
            if missing:
                # The sandbox's prlimit starts the server's command, so a missing one is its complaint.
                result.outcome, result.error = "error", f"command not found: {missing.group(1)}"
            elif tail and result.outcome != "timeout":
                result.error = f"{result.error}; stderr: {tail}"
        result.seconds = time.monotonic() - started
    return result


def _short_shutdown() -> None:
    """The SDK gives a server 2 s to exit after stdin closes and 2 s more after SIGTERM. Our
    servers run in a throw-away sandbox, so half a second each keeps a hung server's cost
    close to its timeout."""
    from mcp.client import stdio

    stdio.PROCESS_TERMINATION_TIMEOUT = min(stdio.PROCESS_TERMINATION_TIMEOUT, 0.5)
    stdio.FORCE_KILL_TIMEOUT = min(stdio.FORCE_KILL_TIMEOUT, 0.5)


_NOT_EXECUTED = re.compile(r"failed to execute (.+?): No such file or directory")


def _stderr_tail(errlog: Any) -> str:
    try:
        errlog.flush()
        errlog.seek(0, os.SEEK_END)
        size = errlog.tell()
        errlog.seek(max(0, size - 4000))
        lines = [ln.strip() for ln in errlog.read().splitlines() if ln.strip()]
    except (OSError, ValueError):
        return ""
    return _one_line(lines[-1], 200) if lines else ""


def _remember_status(statuses: list[tuple[int, str]]) -> Any:
    async def hook(response: Any) -> None:
        statuses.append((response.status_code, _one_line(response.headers.get("www-authenticate", ""), 120)))

    return hook


class RefusedAnswer(Exception):
    """An answer the crawler will not hold: too large, or compressed."""


class ResponseTooLarge(RefusedAnswer):
    """A remote server sent more than ``MAX_RESPONSE_BYTES``."""


async def resolved(host: str, port: int) -> list[str]:
    """The addresses ``host`` names (an address itself) or resolves to; raises OSError."""
    import ipaddress
    import socket

    with contextlib.suppress(ValueError):
        return [str(ipaddress.ip_address(host.strip("[]")))]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def off_public(address: str) -> bool:
    """Whether ``address`` is off the public internet: loopback, private, link-local (a cloud's
    metadata service at 169.254.169.254), reserved, or IPv4 of those inside IPv6."""
    import ipaddress

    ip = ipaddress.ip_address(address)
    inner: list[Any] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv4 inside IPv6: mapped, 6to4, and NAT64 (which reaches private IPv4 too).
        inner += [ip.ipv4_mapped, ip.sixtofour]
        if ip in ipaddress.ip_network("64:ff9b::/96"):
            inner.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        # Ranges Python 3.11 counts as global that reach elsewhere: local-use NAT64 (RFC 8215:
        # whatever IPv4 a site's translator maps it to, its metadata service included),
        # site-local (deprecated, still routed inside some sites), IPv4-compatible and SIIT
        # (IPv4 in the low 32 bits).
        if any(ip in ipaddress.ip_network(n) for n in ("64:ff9b:1::/48", "fec0::/10", "::/96", "::ffff:0:0:0/96")):
            return True
    return any(a is not None and not a.is_global for a in inner)


#: How a host name becomes addresses: :func:`resolved`, or a test's stand-in for a DNS server.
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def private_address(host: str, port: int, resolve: Resolver = resolved) -> str:
    """The first address ``host`` names or resolves to that is not on the public internet
    (:func:`off_public`), or "" (none, or it does not resolve: a direct connection then fails
    on its own; see :func:`_capped_clients` for one through a proxy)."""
    try:
        found = await resolve(host, port)
    except OSError:
        return ""
    return _first_private(found)


def _first_private(addresses: list[str]) -> str:
    """The first of ``addresses`` off the public internet (:func:`off_public`), or ""."""
    return next((address for address in addresses if off_public(address)), "")


def _interleaved(addresses: list[str]) -> list[str]:
    """``addresses`` with IPv6 and IPv4 alternating, the resolver's first family first (RFC
    8305): one unreachable family does not queue every address of the other behind it."""
    first = [a for a in addresses if (":" in a) == (":" in addresses[0])]
    other = [a for a in addresses if (":" in a) != (":" in addresses[0])]
    return [a for pair in itertools.zip_longest(first, other) for a in pair if a is not None]


#: Happy eyeballs (RFC 8305): the next address is tried once the one before has failed or has
#: not connected within this many seconds, the earlier attempts still running.
CONNECT_STAGGER = 0.25


async def _first_connection(addresses: list[str], connect: Callable[[str], Awaitable[Any]]) -> Any:
    """The first of ``addresses`` that ``connect`` reaches, tried as :data:`CONNECT_STAGGER`
    says; the others are cancelled (or closed, when two connect at once).  Raises the last
    failure when none connects."""
    won: list[Any] = []
    failures: list[Exception] = []
    async with anyio.create_task_group() as group:
        for address in addresses:
            failed = anyio.Event()

            async def attempt(address: str = address, failed: anyio.Event = failed) -> None:
                try:
                    stream = await connect(address)
                except Exception as exc:  # the backend's connection errors, whatever their type
                    failures.append(exc)
                    failed.set()
                    return
                if won:  # another attempt connected first
                    with anyio.CancelScope(shield=True):
                        await stream.aclose()
                    return
                won.append(stream)
                group.cancel_scope.cancel()

            group.start_soon(attempt)
            with anyio.move_on_after(CONNECT_STAGGER):
                await failed.wait()
    if won:
        return won[0]
    raise failures[-1]


def _public_connections(client: Any, resolve: Resolver) -> None:
    """Make ``client``'s direct connections go only to public addresses, checked when each is
    opened: the name is resolved once, every address checked, and the connection made to a
    checked address, never to the name.  A check before the request alone let a name that
    resolves to a public address for the check and to 127.0.0.1 for the connection through
    (DNS rebinding).  TLS still verifies the certificate against the name.  Connections
    through a proxy (``HTTPS_PROXY``) go to the proxy, which resolves the target itself; the
    request hook checks the target's name for those."""
    import httpcore2

    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    if not isinstance(pool, httpcore2.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpx2 has no connection pool the crawler knows how to guard")
    inner = pool._network_backend

    class PublicOnly(httpcore2.AsyncNetworkBackend):
        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> Any:
            try:
                found = await resolve(host, port)
            except OSError as exc:
                raise httpcore2.ConnectError(f"{host[:100]} does not resolve: {exc}") from None
            private = _first_private(found)
            if private:
                raise _not_reached(host, private)
            if not found:
                raise httpcore2.ConnectError(f"{host[:100]} has no address")

            async def connect(address: str) -> Any:
                return await inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )

            return await _first_connection(_interleaved(found), connect)

        async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
            raise PrivateRemote("a Unix socket is off the public internet: not reached")

        async def sleep(self, seconds: float) -> None:
            await inner.sleep(seconds)

    pool._network_backend = PublicOnly()


class PrivateRemote(RefusedAnswer):
    """A remote (or a redirect) at an address off the public internet, not reached."""


def _not_reached(host: str, address: str) -> PrivateRemote:
    """The refusal of ``host``, found at ``address``: the request hook's and the connection's."""
    return PrivateRemote(
        f"{host[:100]} is at {address}, off the public internet: not reached from the crawler's"
        " network (--allow-private-remotes reaches it)"
    )


def _capped_clients(limit: int, private_ok: bool = True, resolve: Resolver = resolved) -> Any:
    """An ``httpx_client_factory`` for the SDK's transports whose clients count every
    response body as it streams in, across the whole session: past ``limit`` bytes in all,
    reading fails (:class:`ResponseTooLarge`) instead of growing without bound.  Counted on
    the response, not in one transport, so a proxy's transport (``HTTPS_PROXY``) is counted
    too, and the SSE transport as much as streamable HTTP."""
    import httpx2
    from mcp.shared._httpx_utils import create_mcp_http_client

    read = 0

    class Counted(httpx2.AsyncByteStream):
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.containers = 0  # objects and arrays in this response: parsed, each costs far more than its bytes

        async def __aiter__(self) -> Any:
            nonlocal read
            async for chunk in self.inner:
                read += len(chunk)
                if read > limit:
                    raise ResponseTooLarge(f"the server sent more than {limit:,} bytes")
                self.containers += chunk.count(b"{") + chunk.count(b"[")
                if self.containers > MAX_RESPONSE_CONTAINERS:
                    raise ResponseTooLarge(
                        f"the server sent an answer of more than {MAX_RESPONSE_CONTAINERS:,} objects"
                    )
                yield chunk

        async def aclose(self) -> None:
            await self.inner.aclose()

    async def count(response: Any) -> None:  # runs before the body is read
        # Bytes are counted as they arrive, before decompression, so a compressed answer could
        # unpack far past the cap (a review's 290 kB of gzip became a 300 MB description):
        # none is asked for, and one sent anyway is refused.
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise RefusedAnswer(f"the server sent a {encoding[:20]}-compressed answer when asked for none")
        response.stream = Counted(response.stream)

    async def public_only(request: Any, client: Any) -> None:  # every request, a redirect's too
        url = request.url
        try:
            # The name httpx connects to (IDNA 2008, as sent), not the decoded one, which
            # Python's resolver would encode by IDNA 2003 into another name (`faß` -> `fass`).
            host = url.raw_host.decode("ascii")
        except UnicodeError:
            raise PrivateRemote(f"{url.host[:100]!r} is no host name the crawler can check: not reached") from None
        port = url.port or (443 if url.scheme == "https" else 80)
        if client._transport_for_url(url) is not client._transport:
            # Through a proxy (HTTPS_PROXY, ALL_PROXY), which resolves the name itself: a name
            # only it can resolve (an intranet's) is refused, never handed on unchecked.
            try:
                await resolve(host, port)
            except OSError:
                raise PrivateRemote(
                    f"{url.host[:100]} does not resolve here, and a proxy would reach it unchecked: not reached"
                    " (--allow-private-remotes reaches it)"
                ) from None
        address = await private_address(host, port, resolve)
        if address:
            raise _not_reached(url.host, address)

    def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> Any:
        headers = {**(headers or {}), "Accept-Encoding": "identity"}
        client = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
        client.event_hooks["response"].append(count)
        if not private_ok:

            async def checked(request: Any) -> None:
                await public_only(request, client)

            client.event_hooks["request"].append(checked)  # a clear refusal, and the proxies' check
            _public_connections(client, resolve)  # the check that holds: at connection time
        return client

    return factory


async def introspect_http(
    url: str,
    *,
    transport: str = "streamable-http",
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    private_ok: bool = True,
    resolve: Resolver = resolved,
) -> IntrospectionResult:
    """Connect to a remote server over streamable HTTP or SSE; 401/403 are ``auth_required``.
    Without ``private_ok`` no request (a redirect's neither) goes to an address off the public
    internet: a catalogue entry chooses the URL and its headers, and the crawler's network may
    reach a cloud's metadata service or a company's internal ones (a helper's hunt made it POST
    to a loopback `computeMetadata` URL with `Metadata-Flavor: Google`).  ``resolve`` turns
    host names into addresses (:func:`resolved`, the system's resolver)."""
    import httpx2
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    result = IntrospectionResult(transport, url, "ok")
    statuses: list[tuple[int, str]] = []
    started = time.monotonic()
    try:
        http_timeout = httpx2.Timeout(timeout, read=timeout)
        clients = _capped_clients(MAX_RESPONSE_BYTES, private_ok, resolve)
        if transport == "sse":
            server: Any = sse_client(
                url,
                headers=dict(headers or {}),
                timeout=timeout,
                sse_read_timeout=timeout,
                httpx_client_factory=clients,
            )
            await _session(server, result, timeout)
        else:
            async with clients(headers=dict(headers or {}), timeout=http_timeout) as http:
                # The SDK turns HTTP errors into a generic JSON-RPC error; keep the statuses ourselves.
                http.event_hooks["response"].append(_remember_status(statuses))
                await _session(streamable_http_client(url, http_client=http), result, timeout)
    except BaseException as exc:
        if _from_outside(exc):
            raise
        result.outcome, result.error = describe_failure(exc)
        if result.outcome == "timeout":
            result.error = f"no answer within {timeout:g}s"
        denied = [(code, why) for code, why in statuses if code in (401, 403)]
        if denied:
            code, why = denied[0]
            result.outcome = "auth_required"
            result.error = f"the server requires authentication (HTTP {code}{'; ' + why if why else ''})"
        elif statuses and statuses[-1][0] >= 400 and result.outcome == "error":
            result.error = f"HTTP {statuses[-1][0]} from the server ({result.error})"
    result.seconds = time.monotonic() - started
    return result

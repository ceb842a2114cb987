"""The stdio transport for untrusted servers: the SDK's, with a cap on what a server may write.

The SDK's ``stdio_client`` keeps whatever a server writes until a newline arrives, so a server
that streams megabytes without one (or one enormous "message") grows the crawler's memory for
as long as its timeout lasts; the sandbox's memory limit binds the server, not us. This
transport counts every byte of stdout and, past ``limit`` in all or past a message's own
bounds, hands the session a :class:`StdoutTooLarge` (which the client reports as the reason),
keeps nothing more (the pipe is drained and discarded until shutdown) and lets shutdown kill
the server. Everything else is the SDK's: its message types, and its shutdown sequence (close
stdin, grace period, kill the process group), imported rather than copied.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import mcp_types
from mcp.client.stdio import _stop_server_process
from mcp.shared.message import SessionMessage

from crawler.introspection import reaper
from crawler.introspection.client import MAX_RESPONSE_BYTES, MAX_RESPONSE_CONTAINERS, RefusedAnswer

#: The same budget as a remote answer: far above any honest tools/list.
MAX_STDOUT_BYTES = MAX_RESPONSE_BYTES
#: One message: a listing of 10,000 described tools is a few MB. Parsed, JSON takes many times
#: its size (a review's 60 MB of ``[{},{},...]`` became 5 GB), so a message is also refused
#: past MAX_RESPONSE_CONTAINERS objects and arrays, counted before it is parsed.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class StdoutTooLarge(RefusedAnswer):
    """A stdio server wrote more than the crawler will read."""


def _refusal(line: bytes | bytearray) -> StdoutTooLarge | None:
    if len(line) > MAX_MESSAGE_BYTES:
        return StdoutTooLarge(f"the server sent a message of more than {MAX_MESSAGE_BYTES:,} bytes")
    if line.count(b"{") + line.count(b"[") > MAX_RESPONSE_CONTAINERS:
        return StdoutTooLarge(f"the server sent a message of more than {MAX_RESPONSE_CONTAINERS:,} objects")
    return None


def _message(line: bytes) -> SessionMessage | Exception:
    try:
        text = line.decode("utf-8", "replace")
        return SessionMessage(mcp_types.jsonrpc_message_adapter.validate_json(text, by_name=False))
    except ValueError as exc:  # the session hands it to the message handler, as the SDK does
        return exc


@asynccontextmanager
async def capped_stdio_client(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    errlog: Any,
    limit: int = MAX_STDOUT_BYTES,
    pass_fds: Sequence[int] = (),
) -> AsyncIterator[Any]:
    """Start ``command`` (exactly this environment: nothing of ours is merged in) in a process
    group of its own and bridge its pipes to the session's streams."""
    process = await anyio.open_process(
        list(command), env=dict(env), cwd=cwd, stderr=errlog, start_new_session=True, pass_fds=pass_fds
    )
    reaper.track(process.pid)  # killed at our exit if the shielded shutdown below never runs
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    stdout, stdin = process.stdout, process.stdin
    assert stdout is not None and stdin is not None

    async def stdout_reader() -> None:
        buffer, total = bytearray(), 0
        async with read_writer:
            try:
                async for chunk in stdout:
                    total += len(chunk)
                    if total > limit:
                        await read_writer.send(StdoutTooLarge(f"the server wrote more than {limit:,} bytes to stdout"))
                        break
                    seen = len(buffer)  # look for newlines in the new bytes only: no rescans
                    buffer += chunk
                    start, end = 0, buffer.find(b"\n", seen)
                    refused = None
                    while end >= 0:
                        line = buffer[start:end]
                        refused = _refusal(line)
                        if refused is not None:
                            break
                        await read_writer.send(_message(bytes(line)))
                        start, end = end + 1, buffer.find(b"\n", end + 1)
                    if refused is None:
                        del buffer[:start]
                        refused = _refusal(buffer) if len(buffer) > MAX_MESSAGE_BYTES else None
                    if refused is not None:
                        await read_writer.send(refused)
                        break
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                pass  # the session or our own shutdown ended the conversation
        # Keep the pipe flowing until shutdown closes it, discarding: a server blocked writing
        # more output would otherwise sit out the whole grace period before it is killed.
        with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
            while True:
                await stdout.receive()

    async def stdin_writer() -> None:
        async with write_reader:
            try:
                async for message in write_reader:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await stdin.send(data.encode())
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                await read_writer.aclose()  # a server that stopped reading: end the session, not hang

    async with anyio.create_task_group() as tg:
        tg.start_soon(stdout_reader)
        tg.start_soon(stdin_writer)
        try:
            yield read_stream, write_stream
        finally:
            with anyio.CancelScope(shield=True):
                # Closing the session's ends moves the reader on to draining the pipe.
                for stream in (read_stream, write_stream):
                    await stream.aclose()
                await _stop_server_process(process)
                # The SDK kills the group only when the server outlives its grace period; a server
                # that exits cleanly leaves its children running. Bubblewrap takes them down with
                # it; without it (--unsafe-no-sandbox) this does.
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                reaper.untrack(process.pid)
            tg.cancel_scope.cancel()

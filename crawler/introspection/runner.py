"""Introspecting one catalogue entry: try its plans in order until one answers.

Every plan tried leaves an attempt (outcome, reason, seconds), so a crawl can report
exactly why a server has no tools.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.introspection import sandbox
from crawler.introspection.client import introspect_http, introspect_stdio
from crawler.introspection.installer import InstallError, install_npm, install_pypi
from crawler.introspection.plans import PackagePlan, RemotePlan, SkippedPlan, plans_for
from crawler.introspection.result import IntrospectionResult


@dataclass
class RunnerConfig:
    cache_dir: Path
    timeout: float = 30.0
    install_timeout: float = 300.0
    sandbox_mode: str = "auto"  # auto | bwrap | none
    install: bool = True
    retries: int = 2
    retry_delay: float = 1.0
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    #: Whether remotes at loopback, private or link-local addresses are reached (an internal
    #: registry's servers); off, a catalogue entry cannot aim the crawler's network inward.
    private_remotes: bool = False


async def run_sandboxed(
    command: Sequence[str],
    cfg: RunnerConfig,
    *,
    env: Mapping[str, str] | None = None,
    readonly: Sequence[Path] = (),
    target: str | None = None,
    node: bool | None = None,
) -> IntrospectionResult:
    """Start a stdio server command in the sandbox and list its tools; ``env`` is the server's
    own variables, ``node`` whether it runs on Node (see :func:`sandbox.wrap`)."""
    try:
        mode = sandbox.resolve_mode(cfg.sandbox_mode)
    except sandbox.SandboxUnavailable as exc:
        return IntrospectionResult("stdio", target or " ".join(command), "refused", error=str(exc))
    home = Path(tempfile.mkdtemp(prefix="mcp-catalog-home-"))
    filter_fd: int | None = None
    try:
        filter_fd = sandbox.seccomp_fd() if mode == "bwrap" else None
        wrapped = sandbox.wrap(
            command,
            home=home,
            mode=mode,
            readonly_paths=readonly,
            limits=cfg.limits,
            seccomp_fd=filter_fd,
            env=env,
            node=node,
        )
        return await introspect_stdio(
            wrapped,
            env=sandbox.sandbox_env(home),
            cwd=str(home),
            timeout=cfg.timeout,
            target=target or " ".join(command),
            pass_fds=() if filter_fd is None else (filter_fd,),
        )
    finally:
        if filter_fd is not None:
            os.close(filter_fd)
        shutil.rmtree(home, ignore_errors=True)


#: Signs that a server was written for the 1.x SDK and broke on 2.x, which pip picked
#: because the server does not pin ``mcp``: worth one retry with ``mcp<2``.
SDK1_BREAKAGE = (
    "mcp.server.fastmcp",
    "cannot import name 'FastMCP'",
    "object has no attribute 'list_tools'",
    "object has no attribute 'list_resources'",
    "object has no attribute 'call_tool'",
    "This is mcp 2.x",
)


def broke_on_sdk2(result: IntrospectionResult) -> bool:
    return result.outcome == "crashed" and any(mark in (result.error or "") for mark in SDK1_BREAKAGE)


async def _package(plan: PackagePlan, cfg: RunnerConfig) -> IntrospectionResult:
    result = await _package_once(plan, cfg)
    if plan.registry == "pypi" and broke_on_sdk2(result):
        retry = await _package_once(plan, cfg, extra=("mcp<2",))
        retry.server_info["compat"] = "installed with mcp<2: the server does not run on the 2.x SDK"
        if not retry.ok:
            retry.error = f"{retry.error} (also failed on the 2.x SDK: {result.error})"
        return retry
    return result


async def _package_once(plan: PackagePlan, cfg: RunnerConfig, extra: tuple[str, ...] = ()) -> IntrospectionResult:
    started = time.monotonic()
    try:
        mode = sandbox.resolve_mode(cfg.sandbox_mode)
    except sandbox.SandboxUnavailable as exc:
        return IntrospectionResult("stdio", plan.label, "refused", error=str(exc))
    try:  # two installs of one package, in this process or another, take turns (the installer's lock)
        if plan.registry == "pypi":
            installed = await install_pypi(
                plan.identifier, plan.version, cfg.cache_dir, timeout=cfg.install_timeout, mode=mode, extra=extra
            )
        else:
            installed = await install_npm(
                plan.identifier, plan.version, cfg.cache_dir, timeout=cfg.install_timeout, mode=mode
            )
    except InstallError as exc:
        return IntrospectionResult("stdio", plan.label, "install_failed", time.monotonic() - started, str(exc))
    except TimeoutError:
        return IntrospectionResult(
            "stdio",
            plan.label,
            "install_failed",
            time.monotonic() - started,
            f"installation took longer than {cfg.install_timeout:g}s",
        )
    result = await run_sandboxed(
        [*installed.command, *plan.args],
        cfg,
        env=plan.env,
        readonly=[installed.directory],
        target=plan.label,
        node=plan.registry == "npm",  # by what was installed, never by a command's name
    )
    if plan.placeholders:
        result.server_info["placeholders"] = list(plan.placeholders)
        if not result.ok:
            result.error = f"{result.error} (started with placeholder values for {', '.join(plan.placeholders)})"
    return result


#: Failures worth another try: the network or an overloaded server, not a broken one.
TRANSIENT = ("connection failed", "HTTP 429", "HTTP 502", "HTTP 503", "HTTP 504", "ConnectionReset", "ReadError")


def is_transient(result: IntrospectionResult) -> bool:
    return result.outcome == "error" and any(mark in (result.error or "") for mark in TRANSIENT)


async def _remote(plan: RemotePlan, cfg: RunnerConfig) -> IntrospectionResult:
    """A remote, retried with back-off on transient failures only (never on a timeout: a hung
    server would cost its timeout again)."""
    delay = cfg.retry_delay
    for attempt in range(cfg.retries + 1):
        result = await introspect_http(
            plan.url,
            transport=plan.transport,
            headers=plan.headers,
            timeout=cfg.timeout,
            private_ok=cfg.private_remotes,
        )
        if not is_transient(result) or attempt == cfg.retries:
            break
        await asyncio.sleep(delay)
        delay *= 2
    if attempt:
        result.server_info["retries"] = attempt
    return result


async def introspect_entry(
    packages: Sequence[Mapping[str, Any]], remotes: Sequence[Mapping[str, Any]], cfg: RunnerConfig
) -> list[IntrospectionResult]:
    """Attempts in order; stops at the first that lists tools."""
    attempts: list[IntrospectionResult] = []
    for plan in plans_for(packages, remotes):
        if isinstance(plan, SkippedPlan):
            result = IntrospectionResult("stdio", plan.label, "skipped", error=plan.reason)
        elif isinstance(plan, RemotePlan):
            result = await _remote(plan, cfg)
        elif not cfg.install:
            result = IntrospectionResult(
                "stdio", plan.label, "skipped", error="installing packages from this source is not enabled"
            )
        else:
            result = await _package(plan, cfg)
        attempts.append(result)
        if result.ok:
            break
    return attempts

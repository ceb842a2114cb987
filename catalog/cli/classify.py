"""``catalog classify INPUT.jsonl``: classify tool definitions from a file, store untouched."""

from __future__ import annotations

import io
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from catalog import jsonlines
from catalog.cli.common import fail, friendly, replaced_atomically


def parse_line(line: str, lineno: int) -> tuple[dict[str, Any], Any]:
    """The input object and its definition, or an output line with an ``error`` and ``None``.

    Read by :func:`catalog.jsonlines.parse`: numbers past a float's range (``1e999``) and
    ``NaN`` as null, as the crawler stores them (echoed back as they came they would make the
    output line invalid JSON), lone surrogates as U+FFFD, a line nested too deeply as that
    line's error."""
    from classifier import ToolDefinition

    try:
        data = jsonlines.parse(line)
    except ValueError as exc:
        return {"line": lineno, "error": f"invalid JSON: {exc}"}, None
    if not isinstance(data, dict):
        return {"line": lineno, "error": f"expected an object, got {type(data).__name__}"}, None
    name = data.get("name")
    if name is not None and not isinstance(name, str):  # "has no name" for {"name": 5} misled
        return {**data, "line": lineno, "error": f"tool name is {type(name).__name__}, not a string"}, None
    try:
        defn = ToolDefinition.from_mapping(
            data, server=data.get("server") if isinstance(data.get("server"), str) else None
        )
    except (ValueError, RecursionError) as exc:
        return {**data, "line": lineno, "error": str(exc) if isinstance(exc, ValueError) else "nested too deeply"}, None
    return data, defn


def with_verdict(data: dict[str, Any], verdict: Any) -> dict[str, Any]:
    return {
        **data,
        "category": verdict.category,
        "action": verdict.action,
        "class": verdict.capability_class,
        "risk": verdict.risk,
        "policy_risk": verdict.policy_level,
        "confidence": verdict.confidence,
        "rationale": verdict.rationale,
        "findings": verdict.finding_ids,
        "finding_details": [{"id": f.id, "rule": f.rule, "evidence": f.evidence} for f in verdict.findings],
    }


@friendly
def classify(
    input_file: Annotated[
        str, typer.Argument(metavar="INPUT.jsonl", help="One tool definition per line ('-' for stdin).")
    ],
    output: Annotated[str | None, typer.Option("-o", "--output", help="Write JSONL here instead of stdout.")] = None,
) -> None:
    """Classify tool definitions (one JSON object per line); each output line is the input plus the verdict.
    Lines with the same "server" field are classified together (each is the others' context)."""
    if input_file != "-" and not Path(input_file).is_file():
        raise fail(f"no such file: {input_file}")
    # UTF-8 with bad bytes replaced, stdin too (under a C locale it handed them on as lone surrogates).
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", errors="replace") if input_file == "-" else None
    # utf-8-sig: a file saved with a byte-order mark (as some Windows editors do) lost its first line.
    src: TextIO = stdin or open(input_file, encoding="utf-8-sig", errors="replace")  # noqa: SIM115
    from classifier import classify_many

    errors = 0
    try:
        # The whole file first: lines with the same "server" are one another's context
        # (a tool's category prior comes from its siblings), wherever they sit in the file.
        parsed = [parse_line(line, lineno) for lineno, line in enumerate(src, 1) if line.strip()]
        verdicts = iter(classify_many([d for _, d in parsed if d is not None]))
        # -o FILE is replaced whole or not at all (a failure midway left half of it).
        with replaced_atomically(output) if output else nullcontext(sys.stdout) as dst:
            for data, defn in parsed:
                out = data if defn is None else with_verdict(data, next(verdicts))
                errors += "error" in out
                dst.write(json.dumps(out, ensure_ascii=False) + "\n")
    finally:
        if stdin is None:
            src.close()
    if errors:
        typer.echo(f'{errors} line(s) could not be classified (see their "error" field)', err=True)

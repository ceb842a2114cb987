"""``catalog evaluate FILE.jsonl``: the classifier's figures on labelled tools, beside the peers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from catalog.cli.common import FormatOption, TextOrJson, friendly, say


@friendly
def evaluate(
    labelled: Annotated[
        str,
        typer.Argument(
            metavar="FILE.jsonl", help="Tool definitions with category, action, risk (and optionally poisoned) labels."
        ),
    ],
    output: FormatOption = TextOrJson.TEXT,
    peers: Annotated[bool, typer.Option("--peers/--no-peers", help="Also run mcp-scanner where installed.")] = True,
) -> None:
    """Accuracy and macro-F1 for category and action, risk exact and within one level, critical recall,
    poisoning precision/recall, confusions and slowest tools, beside a keyword baseline and mcp-scanner."""
    from catalog.evaluation.run import evaluate as run
    from catalog.evaluation.run import load, render

    report = run(load(Path(labelled)), peers=peers)
    say(json.dumps(report.to_dict(), indent=2) if output == "json" else render(report))

"""Evaluate the classifier on a labelled JSONL file, beside the keyword baseline and (where
installed) Cisco's mcp-scanner YARA analyzer, on the same tools in the same run.

A labelled line is a tool definition plus ``category``, ``action``, ``risk`` and optionally
``poisoned`` (true/false) or ``findings`` (a list containing ``tool_poisoning``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog import jsonlines
from catalog.display import printable
from catalog.errors import CatalogError
from catalog.evaluation import metrics
from catalog.evaluation.baseline import keyword_verdict
from catalog.evaluation.planted import planted_group
from classifier import ACTIONS, CATEGORIES, RISK_LEVELS, ToolDefinition, Verdict, classify
from classifier.tokens import CJK_CHAR


@dataclass(frozen=True)
class Labelled:
    definition: dict[str, Any]
    category: str
    action: str
    risk: str
    poisoned: bool


@dataclass
class Report:
    n: int
    figures: dict[str, dict[str, float | None]] = field(default_factory=dict)
    confusion_category: list[tuple[str, str, int]] = field(default_factory=list)
    confusion_action: list[tuple[str, str, int]] = field(default_factory=list)
    confusion_risk: list[tuple[str, str, int]] = field(default_factory=list)
    slowest: list[tuple[str, float]] = field(default_factory=list)
    confused: list[dict[str, str]] = field(default_factory=list)
    peers: dict[str, str] = field(default_factory=dict)
    #: Which finder raised our poisoning findings: caught cases and false alarms per finder
    #: ("rules", "learned reading"), and the poisoning cases nothing caught.
    poisoning_by_finder: dict[str, int] = field(default_factory=dict)
    #: Poisoning cases caught of all, per payload group (rows planted by
    #: scripts/build_dataset.py say which payload in ``provenance.derived``).
    poisoning_by_group: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Benign tools per script of their description: how many, and category accuracy, action
    #: accuracy and risk exact on them (a catalogue with many Chinese servers wants to know).
    by_script: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "figures": self.figures,
            "confusion_category": self.confusion_category,
            "confusion_action": self.confusion_action,
            "confusion_risk": self.confusion_risk,
            "slowest": self.slowest,
            "confused": self.confused,
            "peers": self.peers,
            "poisoning_by_finder": self.poisoning_by_finder,
            "poisoning_by_group": self.poisoning_by_group,
            "by_script": self.by_script,
        }


def load(path: Path) -> list[Labelled]:
    if not path.is_file():
        raise CatalogError(f"no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot be read as UTF-8 text ({exc})") from exc
    allowed = {"category": CATEGORIES, "action": ACTIONS, "risk": RISK_LEVELS}
    items: list[Labelled] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = jsonlines.parse(line)
            label = {k: data[k] for k in ("category", "action", "risk")}
        except (ValueError, KeyError, TypeError) as exc:
            raise CatalogError(f"{path}:{lineno}: not a labelled tool ({type(exc).__name__}: {exc})") from exc
        if not isinstance(data.get("name"), str) or not data["name"].strip():
            raise CatalogError(f"{path}:{lineno}: not a labelled tool (no name)")
        for key, values in allowed.items():
            if label[key] not in values:
                raise CatalogError(
                    f"{path}:{lineno}: {key} {label[key]!r} is not one of the rubric's: {', '.join(values)}"
                )
        if not isinstance(data.get("poisoned", False), bool):  # "false" would count as poisoned
            raise CatalogError(f"{path}:{lineno}: poisoned must be true or false, not {data['poisoned']!r}")
        findings = data.get("findings")
        poisoned = data.get("poisoned") is True or (isinstance(findings, list) and "tool_poisoning" in findings)
        items.append(Labelled(data, label["category"], label["action"], label["risk"], poisoned))
    if not items:
        raise CatalogError(f"{path}: no labelled tools")
    return items


def scanner_verdicts(items: Sequence[Labelled], timeout: float = 300) -> tuple[list[bool] | None, str]:
    """Cisco mcp-scanner's offline YARA analyzer: unsafe -> poisoned. ``None`` when not installed."""
    exe = shutil.which("mcp-scanner")
    if exe is None:
        return None, "mcp-scanner not installed (pip install cisco-ai-mcp-scanner to compare)"
    tools = [
        {
            "name": i.definition.get("name"),
            "description": i.definition.get("description") or "",
            "inputSchema": i.definition.get("inputSchema") or {"type": "object"},
            "annotations": i.definition.get("annotations") or {},
        }
        for i in items
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tools.json"
        path.write_text(json.dumps({"tools": tools}))
        try:
            proc = subprocess.run(
                [exe, "--analyzers", "yara", "--format", "raw", "static", "--tools", str(path)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            out = proc.stdout
            data = json.loads(out[out.index("{") :])
        except (subprocess.TimeoutExpired, ValueError) as exc:
            return None, f"mcp-scanner failed: {exc}"
    results = data.get("scan_results") or []
    if len(results) != len(items):
        return None, f"mcp-scanner returned {len(results)} results for {len(items)} tools"
    return [not r.get("is_safe", True) for r in results], "mcp-scanner YARA analyzer"


def evaluate(items: Sequence[Labelled], *, peers: bool = True) -> Report:
    from classifier.classify import current_model, server_contexts

    current_model()  # train or load once, outside the per-tool timings
    defs = [ToolDefinition.from_mapping(item.definition) for item in items]
    # Each tool is classified with the context of its siblings in the file (same ``server``),
    # as the catalogue classifies a server's tools together.
    found = server_contexts(defs)
    ours, timings = [], []
    for item, defn, context in zip(items, defs, found, strict=True):
        start = time.perf_counter()
        verdict = classify(defn, context=context)
        timings.append((item.definition.get("name", "?"), time.perf_counter() - start))
        ours.append(verdict)
    gold_cat = [i.category for i in items]
    gold_act = [i.action for i in items]
    gold_risk = [i.risk for i in items]
    gold_poison = [i.poisoned for i in items]
    report = Report(n=len(items))

    def figures(
        cat: list[str] | None,
        act: list[str],
        risk: list[str],
        poison: list[bool] | None,
        policy: list[str] | None = None,
    ) -> dict:
        policy = policy or risk  # the level each tool's policy follows
        benign = [p for g, p in zip(gold_poison, poison or [], strict=False) if not g]
        fp_rate = sum(benign) / len(benign) if poison is not None and benign else None
        prec, rec = metrics.precision_recall(gold_poison, poison) if poison is not None else (None, None)
        return {
            "category_accuracy": metrics.accuracy(gold_cat, cat) if cat else None,
            "category_macro_f1": metrics.macro_f1(gold_cat, cat) if cat else None,
            "action_accuracy": metrics.accuracy(gold_act, act),
            "action_macro_f1": metrics.macro_f1(gold_act, act),
            "risk_exact": metrics.accuracy(gold_risk, risk),
            "risk_within_one": metrics.within_one(gold_risk, risk),
            "critical_recall": metrics.recall_of("critical", gold_risk, risk),
            # Policy view: a critical tool rated unknown is denied too (default: deny).
            "critical_denied": metrics.share_in("critical", gold_risk, policy, {"critical", "unknown"}),
            # The policy no milder than the rubric's level (under doubt it follows a stricter reading).
            "policy_not_milder": metrics.at_least(gold_risk, policy),
            "poisoning_precision": prec,
            "poisoning_recall": rec,
            "poisoning_false_alarms": fp_rate,
        }

    report.figures["ours"] = figures(
        [v.category for v in ours],
        [v.action for v in ours],
        [v.risk for v in ours],
        ["tool_poisoning" in v.finding_ids for v in ours],
        [v.policy_level for v in ours],
    )
    report.figures["ours"]["confidence_ece"] = metrics.calibration_error(
        [v.confidence for v in ours],
        [v.category == c and v.action == a for v, c, a in zip(ours, gold_cat, gold_act, strict=True)],
    )
    report.figures["ours"]["unknown_share"] = sum(v.risk == "unknown" for v in ours) / len(ours)
    rules_only = [classify(ToolDefinition.from_mapping(i.definition), learned=False) for i in items]
    report.figures["rules only"] = figures(
        [v.category for v in rules_only],
        [v.action for v in rules_only],
        [v.risk for v in rules_only],
        ["tool_poisoning" in v.finding_ids for v in rules_only],
    )
    report.peers["rules only"] = "the same classifier with the learned model switched off"
    base = [keyword_verdict(str(i.definition.get("name", ""))) for i in items]
    report.figures["keyword baseline"] = figures(None, [a for a, _ in base], [r for _, r in base], None)
    report.peers["keyword baseline"] = "verb lexicon on the split name (README, Classifier)"
    if peers:
        scanned, note = scanner_verdicts(items)
        report.peers["mcp-scanner"] = note
        if scanned is not None:
            empty = [""] * len(items)
            report.figures["mcp-scanner"] = {
                k: v for k, v in figures(None, empty, empty, scanned).items() if k.startswith("poisoning")
            }
    report.confusion_category = [
        (g, p, n) for (g, p), n in metrics.confusion(gold_cat, [v.category for v in ours]).most_common(10)
    ]
    report.confusion_action = [
        (g, p, n) for (g, p), n in metrics.confusion(gold_act, [v.action for v in ours]).most_common(10)
    ]
    report.confusion_risk = [
        (g, p, n) for (g, p), n in metrics.confusion(gold_risk, [v.risk for v in ours]).most_common(10)
    ]
    report.poisoning_by_finder = poisoning_finders(gold_poison, ours)
    report.poisoning_by_group = poisoning_groups(items, ours)
    report.by_script = by_script(items, ours)
    report.slowest = sorted(timings, key=lambda t: -t[1])[:5]
    report.confused = [
        {
            "name": str(i.definition.get("name")),
            "gold": f"{i.category}/{i.action}/{i.risk}",
            "ours": f"{v.category}/{v.action}/{v.risk}",
        }
        for i, v in zip(items, ours, strict=True)
        if (i.category, i.risk) != (v.category, v.risk)
    ][:15]
    return report


def poisoning_finders(gold: list[bool], verdicts: list[Verdict]) -> dict[str, int]:
    """Caught poisoning cases and false alarms by finder: the learned instruction reading
    speaks only where the rules found nothing, so each flagged tool has one finder."""
    out = {"caught by rules": 0, "caught by learned reading": 0, "missed": 0}
    out |= {"false alarms by rules": 0, "false alarms by learned reading": 0}
    for poisoned, verdict in zip(gold, verdicts, strict=True):
        rules = {f.rule for f in verdict.findings if f.id == "tool_poisoning"}
        finder = "learned reading" if rules == {"learned-instruction"} else "rules" if rules else ""
        if poisoned:
            out[f"caught by {finder}" if finder else "missed"] += 1
        elif finder:
            out[f"false alarms by {finder}"] += 1
    return out


def poisoning_groups(items: Sequence[Labelled], verdicts: Sequence[Verdict]) -> dict[str, tuple[int, int]]:
    """(caught, all) poisoning cases per payload group, for rows that name their payload:
    each group was written separately, so a group is a measure of wording not seen before."""
    out: dict[str, tuple[int, int]] = {}
    for item, verdict in zip(items, verdicts, strict=True):
        row = {"poisoned": item.poisoned, "provenance": item.definition.get("provenance")}
        if group := planted_group(row):
            caught, total = out.get(group, (0, 0))
            out[group] = (caught + ("tool_poisoning" in verdict.finding_ids), total + 1)
    return dict(sorted(out.items()))


#: The scripts a description is sorted by, in the order they are reported.
SCRIPTS = ("ascii", "latin accented", "greek/cyrillic", "cjk", "other", "no description")


def script_of(text: str) -> str:
    """The script a description is written in, by its letters: ``cjk`` or ``greek/cyrillic``
    where more than a fifth of them are, ``latin accented`` where any letter is beyond ASCII,
    else ``ascii``."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "no description"
    cjk = sum(CJK_CHAR.match(c) is not None for c in letters)  # the tokeniser's CJK scripts
    if cjk > len(letters) / 5:
        return "cjk"
    if sum("\u0370" <= c <= "\u04ff" for c in letters) > len(letters) / 5:
        return "greek/cyrillic"
    beyond = [c for c in letters if not c.isascii()]
    if not beyond:
        return "ascii"
    return "latin accented" if all(c <= "\u024f" for c in beyond) else "other"


def by_script(items: Sequence[Labelled], verdicts: Sequence[Verdict]) -> dict[str, dict[str, float]]:
    """Benign tools by the script of their description: n, category and action accuracy, risk exact."""
    groups: dict[str, list[tuple[Labelled, Verdict]]] = {}
    for item, verdict in zip(items, verdicts, strict=True):
        if not item.poisoned:
            groups.setdefault(script_of(str(item.definition.get("description") or "")), []).append((item, verdict))
    out: dict[str, dict[str, float]] = {}
    for script in SCRIPTS:
        pairs = groups.get(script)
        if pairs:
            n = len(pairs)
            out[script] = {
                "n": n,
                "category_accuracy": sum(i.category == v.category for i, v in pairs) / n,
                "action_accuracy": sum(i.action == v.action for i, v in pairs) / n,
                "risk_exact": sum(i.risk == v.risk for i, v in pairs) / n,
            }
    return out


def render(report: Report) -> str:
    names = list(report.figures)
    keys = list(report.figures["ours"])
    lines = [f"{report.n} labelled tools", "", f"{'metric':26}" + "".join(f"{n:>18}" for n in names)]
    for k in keys:
        cells = []
        for n in names:
            v = report.figures[n].get(k)
            cells.append(f"{'—' if v is None else f'{v:.3f}':>18}")
        lines.append(f"{k:26}" + "".join(cells))
    lines += [
        "",
        "peers: " + "; ".join(f"{k}: {v}" for k, v in report.peers.items()),
        "",
        "most confused categories (gold -> ours):",
    ]
    lines += [f"  {g} -> {p}: {n}" for g, p, n in report.confusion_category] or ["  none"]
    lines.append("most confused actions (gold -> ours):")
    lines += [f"  {g} -> {p}: {n}" for g, p, n in report.confusion_action] or ["  none"]
    lines.append("most confused risk levels (gold -> ours):")
    lines += [f"  {g} -> {p}: {n}" for g, p, n in report.confusion_risk] or ["  none"]
    if report.poisoning_by_finder:
        lines.append(
            "poisoning findings by finder: " + ", ".join(f"{k} {v}" for k, v in report.poisoning_by_finder.items())
        )
    if report.poisoning_by_group:
        lines.append(
            "poisoning caught by payload group: "
            + ", ".join(f"{g} {c}/{n}" for g, (c, n) in report.poisoning_by_group.items())
        )
    if report.by_script:
        lines.append("benign tools by description script (n: category, action, risk exact):")
        lines += [
            f"  {script} {int(f['n'])}: {f['category_accuracy']:.3f}, {f['action_accuracy']:.3f}, {f['risk_exact']:.3f}"
            for script, f in report.by_script.items()
        ]
    lines.append("slowest tools:")
    lines += [f"  {printable(name, one_line=True)}: {secs * 1000:.2f} ms" for name, secs in report.slowest]
    lines.append("examples where ours differs (category/action/risk):")
    confused = report.confused
    lines += [f"  {printable(c['name'], one_line=True)}: gold {c['gold']}, ours {c['ours']}" for c in confused] or [
        "  none"
    ]
    return "\n".join(lines)

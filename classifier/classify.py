"""``classify(definition) -> Verdict``: the rules path of the classifier.

Pure: a definition in, a verdict out, no I/O beyond reading the rule files once.
"""

from __future__ import annotations

from classifier.analysis import Facts, choose_action, choose_category, first_sentence, gather
from classifier.definition import ToolDefinition
from classifier.findings import annotation_mismatch, poisoning
from classifier.risk import Context, assess, unknown_reason
from classifier.rules import RuleSet, load_rules
from classifier.verdict import UNKNOWN, Finding, Verdict

RULES_VERSION = "rules-0.1"

CATEGORY_TITLE = {
    "financial": "Financial",
    "code_execution": "Code execution",
    "filesystem": "Filesystem",
    "database": "Database",
    "communication": "Communication",
    "identity_access": "Identity & access",
    "infrastructure": "Infrastructure",
    "source_control": "Source control",
    "browser_automation": "Browser automation",
    "web_access": "Web access",
    "productivity": "Productivity",
    "knowledge": "Knowledge",
    "media_ai": "Media & AI",
    "system_device": "System & devices",
    "utility": "Utility",
}


def classifier_version(rules: RuleSet | None = None) -> str:
    rules = rules or load_rules()
    return f"{RULES_VERSION}+{rules.digest[:10]}"


def _confidence(score: float, runner_up: float, action_source: str) -> float:
    if score <= 0:
        return 0.1
    margin = (score - runner_up) / score
    base = 0.55 + 0.4 * margin
    if action_source == "default":
        base -= 0.2
    return round(max(0.05, min(0.99, base)), 3)


def _rationale(
    defn: ToolDefinition,
    facts: Facts,
    category: str,
    cat_evidence: tuple[str, ...],
    action_verb: str,
    action_source: str,
    action_note: str,
    action: str,
    risk: str,
    rule_id: str,
    why: str,
    modifiers: list[str],
    findings: list[Finding],
) -> str:
    what = first_sentence(defn.description) or f"Tool `{defn.name}` (no description)"
    ev: list[str] = []
    if action_verb and action_source in ("name", "description"):
        ev.append(f"verb *{action_verb}* in the {action_source}")
    if cat_evidence:
        ev.append("domain words " + ", ".join(f"*{w}*" for w in cat_evidence[:4]))
    if action_note:
        ev.append(action_note)
    text = what.rstrip(".") + "."
    if ev:
        text += " Evidence: " + "; ".join(ev) + "."
    if facts.batch:
        limit = f" up to {facts.max_items} items" if facts.max_items else " several items"
        text += f" Acts on{limit} per call (batch form *{facts.batch}*)."
    if risk == UNKNOWN:
        text += f" Risk unknown ({why}): denied until a person classifies it."
    else:
        base = rule_id.split(".", 1)[0]
        text += f" {CATEGORY_TITLE[category]} + {action} ⇒ {base} (rule {rule_id}): {why}."
    for m in modifiers:
        text += f" Modifier: {m}."
    for f in findings:
        text += f" Finding {f.id}: {f.evidence}."
    return text


def classify(defn: ToolDefinition, rules: RuleSet | None = None) -> Verdict:
    rules = rules or load_rules()
    facts = gather(defn, rules)
    cat = choose_category(facts, rules)
    act = choose_action(facts, cat.id, rules)
    findings = poisoning(defn, rules) + annotation_mismatch(defn, act)
    ctx = Context(cat.id, act, facts, tuple(findings), rules)
    risk, rule_id, why, modifiers = assess(ctx)
    reason = None if rule_id == "critical.poisoning" else unknown_reason(ctx, cat.score, bool(defn.description))
    if reason:
        risk, rule_id, why, modifiers = UNKNOWN, "unknown.evidence", reason, []
    rationale = _rationale(
        defn,
        facts,
        cat.id,
        cat.evidence,
        act.verb,
        act.source,
        act.note,
        act.id,
        risk,
        rule_id,
        why,
        modifiers,
        findings,
    )
    return Verdict(
        category=cat.id,
        action=act.id,
        risk=risk,
        rationale=rationale,
        findings=tuple(findings),
        confidence=_confidence(cat.score, cat.runner_up_score, act.source),
        risk_rule=rule_id,
        classifier_version=classifier_version(rules),
        evidence=tuple(cat.evidence),
    )

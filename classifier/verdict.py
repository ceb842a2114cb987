"""The output side of the classifier: frozen verdicts and findings.

"Could not decide" is a value (risk ``unknown`` with a reason), never ``None``, so callers
cannot mistake missing evidence for safety.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CATEGORIES: tuple[str, ...] = (
    "financial",
    "code_execution",
    "filesystem",
    "database",
    "communication",
    "identity_access",
    "infrastructure",
    "source_control",
    "browser_automation",
    "web_access",
    "productivity",
    "knowledge",
    "media_ai",
    "system_device",
    "utility",
)

#: Weakest to strongest; a tool's action is the strongest one it can perform.
ACTIONS: tuple[str, ...] = ("read", "write", "send", "execute", "delete", "transact")

#: Highest first. ``unknown`` is not a level: it is never treated as ``low``.
RISK_LEVELS: tuple[str, ...] = ("critical", "high", "medium", "low")
UNKNOWN = "unknown"

#: PolicyLayer's capability classes, reported beside the action so figures compare.
ACTION_CLASS: dict[str, str] = {
    "read": "Read",
    "write": "Write",
    "send": "Write",
    "execute": "Execute",
    "delete": "Destructive",
    "transact": "Financial",
}

FINDING_IDS: tuple[str, ...] = ("tool_poisoning", "annotation_mismatch", "definition_changed")


def action_rank(action: str) -> int:
    return ACTIONS.index(action)


def risk_rank(risk: str) -> int:
    """0 for ``low`` .. 3 for ``critical``; ``unknown`` ranks as strict as ``critical``."""
    if risk == UNKNOWN:
        return len(RISK_LEVELS)
    return len(RISK_LEVELS) - 1 - RISK_LEVELS.index(risk)


@dataclass(frozen=True)
class Finding:
    """One problem found in a definition, with the text that shows it."""

    id: str
    evidence: str
    rule: str = ""
    severe: bool = False


@dataclass(frozen=True)
class Verdict:
    category: str
    action: str
    risk: str
    rationale: str
    findings: tuple[Finding, ...] = ()
    confidence: float = 0.0
    risk_rule: str = ""
    classifier_version: str = ""
    evidence: tuple[str, ...] = field(default=())
    #: The level the recommended policy follows: ``risk``, or, when the classifier is in
    #: doubt, the level of a stricter plausible reading (the rationale names it).  Doubt
    #: tightens the policy at every level but sets the risk itself only to ``critical``, so
    #: the risk stays the best reading's and the policy errs to the stricter one.  Empty
    #: (verdicts made before the field existed) means ``risk``.
    policy_risk: str = ""

    @property
    def policy_level(self) -> str:
        return self.policy_risk or self.risk

    @property
    def capability_class(self) -> str:
        return ACTION_CLASS[self.action]

    @property
    def finding_ids(self) -> list[str]:
        return sorted({f.id for f in self.findings})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = [asdict(f) for f in self.findings]
        data["evidence"] = list(self.evidence)
        data["class"] = self.capability_class
        return data

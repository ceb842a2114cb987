"""Metrics for labelled tool sets: accuracy, macro-F1, risk distance, recall and precision.

Written out rather than imported so the figures are exact, dependency-free and easy to check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

RISK_SCALE = ("low", "medium", "high", "critical")


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) if gold else 0.0


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Over every label that is labelled or predicted, as scikit-learn averages it: a label
    only ever predicted (wrongly) counts, with F1 0, rather than dropping out of the mean."""
    labels = sorted(set(gold) | set(pred))
    scores = []
    for label in labels:
        tp = sum(g == p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(p == label and g != label for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def within_one(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Risk within one level; ``unknown`` counts as a miss (it is never a level)."""
    ok = 0
    for g, p in zip(gold, pred, strict=True):
        if g in RISK_SCALE and p in RISK_SCALE and abs(RISK_SCALE.index(g) - RISK_SCALE.index(p)) <= 1:
            ok += 1
    return ok / len(gold) if gold else 0.0


def at_least(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Share of items rated at or above their gold level (a policy no milder than the
    rubric's); ``unknown`` counts as at least any level, as a gateway denies it."""
    ok = 0
    for g, p in zip(gold, pred, strict=True):
        if p == "unknown" or (g in RISK_SCALE and p in RISK_SCALE and RISK_SCALE.index(p) >= RISK_SCALE.index(g)):
            ok += 1
    return ok / len(gold) if gold else 0.0


def recall_of(label: str, gold: Sequence[str], pred: Sequence[str]) -> float | None:
    """Recall of one label; ``None`` when the file has no item with that label (undefined)."""
    relevant = [p for g, p in zip(gold, pred, strict=True) if g == label]
    return sum(p == label for p in relevant) / len(relevant) if relevant else None


def share_in(label: str, gold: Sequence[str], pred: Sequence[str], accepted: set[str]) -> float | None:
    """Of the items labelled ``label``, the share predicted as one of ``accepted`` (``None`` if none)."""
    relevant = [p for g, p in zip(gold, pred, strict=True) if g == label]
    return sum(p in accepted for p in relevant) / len(relevant) if relevant else None


def precision_recall(gold: Sequence[bool], pred: Sequence[bool]) -> tuple[float | None, float | None]:
    """Precision and recall; ``None`` where undefined (nothing flagged, nothing to find)."""
    tp = sum(g and p for g, p in zip(gold, pred, strict=True))
    fp = sum(p and not g for g, p in zip(gold, pred, strict=True))
    fn = sum(g and not p for g, p in zip(gold, pred, strict=True))
    return (tp / (tp + fp) if tp + fp else None), (tp / (tp + fn) if tp + fn else None)


def confusion(gold: Sequence[str], pred: Sequence[str]) -> Counter[tuple[str, str]]:
    return Counter((g, p) for g, p in zip(gold, pred, strict=True) if g != p)


def calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: how far stated confidence is from observed accuracy.

    Verdicts are put in ``bins`` equal-width confidence bins; the error is the
    size-weighted mean gap between each bin's mean confidence and its accuracy.
    """
    if not confidence:
        return 0.0
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [
            (c, ok) for c, ok in zip(confidence, correct, strict=True) if lo <= c < hi or (b == bins - 1 and c == 1.0)
        ]
        if members:
            mean_conf = sum(c for c, _ in members) / len(members)
            acc = sum(ok for _, ok in members) / len(members)
            total += len(members) * abs(mean_conf - acc)
    return total / len(confidence)

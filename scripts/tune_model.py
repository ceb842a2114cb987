#!/usr/bin/env python3
"""Choose the learned model's settings by cross-validation grouped by server.

Only train.jsonl and dev.jsonl are read: the test split stays untouched by tuning.  Every
fold holds out whole servers (as the test split does), so the figures estimate accuracy
on servers the model has not seen.  Prints category and action accuracy and macro-F1 per
setting, best first; the chosen values are the constants at the top of
classifier/model.py.

``--privacy`` sweeps the privacy head's regularisation and cut (risk.PRIVATE_ABOVE), with and
without the labelled category as a feature, on the reads labelled low or medium.

``--privacy-context`` sweeps the weight of a read's server siblings in its privacy reading
(classifier/context.py: PRIVACY_CONTEXT_WEIGHT, PRIVACY_PSEUDO) over out-of-fold privacy and
action readings of every train + dev tool, scored on the reads labelled low or medium.

``--context`` instead sweeps the server-context constants (classifier/context.py) over
out-of-fold category probabilities, scoring the category the verdict would take (the
rules' unless the model overrides them, as classify.combine decides).

Usage: .venv/bin/python scripts/tune_model.py [--folds 5] [--context | --privacy | --privacy-context]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import GroupKFold  # noqa: E402

from classifier.classify import rule_reading  # noqa: E402
from classifier.model import DATA_DIR, DEV_FILE, TRAIN_FILES, feature_matrix, fit_head, read_jsonl  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--context", action="store_true", help="sweep the server-context constants instead")
    ap.add_argument("--privacy", action="store_true", help="sweep the privacy head's C and cut instead")
    ap.add_argument("--privacy-context", action="store_true", help="sweep the siblings' weight in the privacy reading")
    args = ap.parse_args()
    rows = [r for name in (*TRAIN_FILES, DEV_FILE) for r in read_jsonl(DATA_DIR / name)]
    readings = [rule_reading(r) for r in rows]  # (rules' category, rules' action, features)
    feats = [f for _, _, f in readings]
    groups = [r["server"] for r in rows]
    folds = list(GroupKFold(n_splits=args.folds).split(feats, groups=groups))
    print(f"{len(rows)} tools from {len(set(groups))} servers, {args.folds} server-grouped folds")
    if args.context:
        sweep_context(rows, readings, groups, folds)
        return
    if args.privacy:
        sweep_privacy(rows, feats, groups, args.folds)
        return
    if args.privacy_context:
        sweep_privacy_context(rows, feats, groups, folds)
        return
    results = []
    for c, rw, cw in itertools.product((0.5, 1.0, 2.0, 4.0, 8.0), (1.0, 2.0, 3.0, 5.0), (None, "balanced")):
        scores = []
        for task in ("category", "action"):
            gold, pred = [], []
            for tr, te in folds:
                train_x, train_y = [feats[i] for i in tr], [rows[i][task] for i in tr]
                head = fit_head(train_x, train_y, c=c, rule_weight=rw, class_weight=cw)
                gold += [rows[i][task] for i in te]
                pred += [head.probabilities(feats[i])[0][0] for i in te]
            acc = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)
            scores += [acc, f1_score(gold, pred, average="macro")]
        results.append((c, rw, cw, *scores))
        print(f"C={c:<4} rule_weight={rw:<4} class_weight={cw!s:9} " + " ".join(f"{s:.3f}" for s in scores), flush=True)
    results.sort(key=lambda r: -(r[3] + r[5]))
    print("\nbest (category acc + action acc):")
    for r in results[:5]:
        setting = f"C={r[0]} rule_weight={r[1]} class_weight={r[2]}"
        print(f"{setting}: category {r[3]:.3f}/{r[4]:.3f} action {r[5]:.3f}/{r[6]:.3f}")


def sweep_context(
    rows: list[dict[str, Any]],
    readings: list[tuple[Any, Any, list[str]]],
    groups: list[str],
    folds: list[tuple[Any, Any]],
) -> None:
    import numpy as np

    feats = [f for _, _, f in readings]
    from classifier import context
    from classifier.classify import CATEGORY_OVERRIDE

    classes = sorted({r["category"] for r in rows})
    p = np.zeros((len(rows), len(classes)))
    for tr, te in folds:
        head = fit_head([feats[i] for i in tr], [rows[i]["category"] for i in tr])
        cols = [classes.index(c) for c in head.classes]
        known: tuple[list[int], list[int]] = ([], [])
        for i in te:
            known[1].append(len(known[0]))
            known[0].extend(head.rows(feats[i]))
        p[np.ix_(te, cols)] = head.probability_matrix(feature_matrix(known, len(head.index)))
    gold = np.array([classes.index(r["category"]) for r in rows])
    names = [str(r["name"]) for r in rows]
    rule = [cat for cat, _, _ in readings]
    rule_col = np.array([classes.index(c.id) for c in rule])
    rule_score = np.array([c.score for c in rule])

    def verdict_accuracy(q: np.ndarray, override: float = CATEGORY_OVERRIDE) -> float:
        top = q.argmax(axis=1)
        use_model = (rule_score <= 0) | ((top != rule_col) & (q.max(axis=1) >= override))
        return float((np.where(use_model, top, rule_col) == gold).mean())

    print(f"no context: verdict category {verdict_accuracy(p):.4f}, model alone {(p.argmax(1) == gold).mean():.4f}")
    names_of = ("CONTEXT_WEIGHT", "CONTEXT_FLOOR", "CONTEXT_PSEUDO", "CONTEXT_UNSURE")
    shipped = tuple(getattr(context, n) for n in names_of)
    results = []
    for setting in itertools.product((1.0, 2.0, 3.0, 4.0, 6.0, 8.0), (0.01, 0.03), (2.0, 4.0), (0.8, 0.9, 0.95)):
        for name, value in zip(names_of, setting, strict=True):
            setattr(context, name, value)
        results.append((verdict_accuracy(context.apply_matrix(p, groups, names)), *setting))
    results.sort(key=lambda r: -r[0])
    for acc, weight, floor, pseudo, unsure in results[:10]:
        print(f"weight={weight} floor={floor} pseudo={pseudo} unsure={unsure}: verdict category {acc:.4f}")
    for name, value in zip(names_of, shipped, strict=True):
        setattr(context, name, value)
    print(f"shipped: verdict category {verdict_accuracy(context.apply_matrix(p, groups, names)):.4f}")
    # The model's sureness needed to overrule the rules' category (classify.CATEGORY_OVERRIDE),
    # with the shipped context constants.
    with_context = context.apply_matrix(p, groups, names)
    for override in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        print(f"override={override}: verdict category {verdict_accuracy(with_context, override):.4f}")


def sweep_privacy(rows: list[dict[str, Any]], feats: list[list[str]], groups: list[str], n_folds: int) -> None:
    """The privacy head (classifier.model: reads labelled low or medium) out of fold, and
    the accuracy of each cut (risk.PRIVATE_ABOVE) against the labels' low/medium."""
    from classifier.model import CATEGORY_FEATURE, PRIVATE, PUBLIC, privacy_rows

    picked = privacy_rows(rows)
    y = [PRIVATE if rows[i]["risk"] == "medium" else PUBLIC for i in picked]
    g = [groups[i] for i in picked]
    print(f"{len(picked)} low/medium reads, {y.count(PRIVATE)} private")
    # With the labelled category as a feature (as the shipped head learns it; a verdict weighs
    # it by the model's category probabilities, classifier.context.Privacy) and without.
    for with_category in (True, False):
        x = [[*feats[i], CATEGORY_FEATURE + rows[i]["category"]] if with_category else feats[i] for i in picked]
        for c in (0.5, 1.0, 2.0, 4.0):
            p = [0.0] * len(picked)
            for tr, te in GroupKFold(n_splits=n_folds).split(x, groups=g):
                head = fit_head([x[i] for i in tr], [y[i] for i in tr], c=c)
                for i in te:
                    p[i] = dict(head.probabilities(x[i])).get(PRIVATE, 0.0)
            cuts = " ".join(
                f"{cut}: {sum((q >= cut) == (label == PRIVATE) for q, label in zip(p, y, strict=True)) / len(y):.3f}"
                for cut in (0.3, 0.4, 0.5, 0.6, 0.7)
            )
            print(f"{'with' if with_category else 'without'} category, C={c}: accuracy by cut {cuts}", flush=True)


def sweep_privacy_context(
    rows: list[dict[str, Any]], feats: list[list[str]], groups: list[str], folds: list[tuple[Any, Any]]
) -> None:
    """Out of fold: every tool's privacy log-odds (the privacy head trained on the fold's
    low/medium reads) and whether the action head reads it as a read; then, per setting, the
    accuracy of each cut on the low/medium reads with the siblings' shift applied, as
    classify.server_contexts and context.shift_private do (the head here learns no category
    weights: the siblings' reads enter on their words alone, as they do there)."""
    import numpy as np

    from classifier import context
    from classifier.model import PRIVATE, PUBLIC, privacy_rows
    from classifier.risk import PRIVATE_ABOVE

    picked = privacy_rows(rows)
    private = {i: rows[i]["risk"] == "medium" for i in picked}
    logit = np.zeros(len(rows))
    reads = np.zeros(len(rows), dtype=bool)
    for tr, te in folds:
        train_picked = [i for i in tr if i in private]
        head = fit_head([feats[i] for i in train_picked], [PRIVATE if private[i] else PUBLIC for i in train_picked])
        action = fit_head([feats[i] for i in tr], [rows[i]["action"] for i in tr])
        for i in te:
            q = min(max(dict(head.probabilities(feats[i])).get(PRIVATE, 0.0), 1e-6), 1 - 1e-6)
            logit[i] = np.log(q / (1 - q))
            reads[i] = action.probabilities(feats[i])[0][0] == "read"
    names = [str(r["name"]) for r in rows]
    gold = np.array([private[i] for i in picked])
    print(f"{len(picked)} low/medium reads, {int(gold.sum())} private; shipped cut {PRIVATE_ABOVE}")
    # (Shifting only reads the head is unsure of, as CONTEXT_UNSURE does for the category, was
    # tried: within 0.002 of shifting every read.)
    for weight, pseudo in itertools.product((0.0, 0.3, 0.5, 0.8, 1.0, 1.5), (1.0, 3.0)):
        context.PRIVACY_PSEUDO = pseudo
        # Every sibling counts, planted copies included, as in classify.server_contexts.
        means, _ = context.privacy_means(logit, reads, groups, names)
        shifted = (logit + weight * means)[picked]
        cuts = " ".join(
            f"{cut}: {((shifted >= np.log(cut / (1 - cut))) == gold).mean():.3f}" for cut in (0.4, 0.5, 0.6)
        )
        print(f"weight={weight} pseudo={pseudo}: accuracy by cut {cuts}", flush=True)


if __name__ == "__main__":
    main()

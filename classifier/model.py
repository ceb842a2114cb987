"""The learned half of the classifier: linear heads (category, action, privacy of a read, and
the instruction reading of :mod:`classifier.instructions`) kept as JSON.

Why linear, and why JSON: a multinomial logistic regression over sparse word features is
fast (a verdict is a sum of a few dozen weight rows), explains itself (every weight belongs
to a word a person can find in the definition) and is stored as plain numbers, so nothing
executable is ever loaded from disk (no pickles).

The weights are trained from the labelled data committed under ``classifier/data/`` the
first time they are needed, then cached under a key made of the data's hash, the feature
code's hash and the library versions; any change to any of them trains afresh.  Training
takes a few seconds and is deterministic (fixed data order, a deterministic solver, weights
rounded before they are stored), so every machine gets the same verdicts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from classifier.instructions import BENIGN, PLANTED
from classifier.rules import code_digest, rules_digest

if TYPE_CHECKING:
    from classifier.instructions import InstructionReader

DATA_DIR = Path(__file__).parent / "data"
#: The files the model learns from; ``test.jsonl`` is never read by training or tuning.
TRAIN_FILES = ("train.jsonl",)
DEV_FILE = "dev.jsonl"
MODEL_FORMAT = 2
#: The privacy head's classes.
PRIVATE, PUBLIC = "private", "public"
#: The privacy head's feature for the category a read is read as (``pc:knowledge``).
CATEGORY_FEATURE = "pc:"
#: Inverse regularisation strength, chosen on the dev split (scripts/tune_model.py).
C = 2.0
#: Value of the rules' own conclusions as features (see :func:`feature_value`).
RULE_WEIGHT = 2.0
RULE_PREFIXES = ("rc:", "ra:", "rs:", "rv:")
#: ``"balanced"`` weighs rare classes up (macro-F1), ``None`` follows the data (accuracy).
CLASS_WEIGHT: str | None = None
#: Weights below this magnitude are dropped: they never change a decision and cost memory.
PRUNE = 1e-4


def feature_matrix(known: tuple[list[int], list[int]], width: int) -> Any:
    """The 0/1 sparse matrix of a batch's feature rows (``known``: every definition's rows
    concatenated, and where each one's starts), ``width`` features wide."""
    from scipy.sparse import csr_matrix

    rows, starts = known
    # np.fromiter reads a list of ints in one typed pass; np.asarray first discovers the type
    # of each element, at twice the cost.
    columns = np.fromiter(rows, dtype=np.int32, count=len(rows))
    pointers = np.fromiter([*starts, len(rows)], dtype=np.int64, count=len(starts) + 1)
    return csr_matrix((np.ones(len(rows)), columns, pointers), shape=(len(starts), width))


@dataclass(frozen=True, eq=False)
class Head:
    """One linear softmax classifier: ``classes``, a feature index, weights and a temperature."""

    classes: tuple[str, ...]
    index: dict[str, int]
    weights: np.ndarray  # features x classes
    bias: np.ndarray
    temperature: float = 1.0

    @cached_property
    def lookup(self) -> dict[str, dict[str, int]]:
        """The feature index by prefix (:func:`classifier.features.known_rows` reads it)."""
        from classifier.features import split_index

        return split_index(self.index)

    def rows(self, features: Iterable[str]) -> list[int]:
        index = self.index
        return [i for i in map(index.get, features) if i is not None]

    def scores(self, features: Iterable[str]) -> np.ndarray:
        rows = self.rows(features)
        if not rows:
            return self.bias.copy()
        return self.bias + self.weights[rows].sum(axis=0)

    def probabilities(self, features: Iterable[str]) -> list[tuple[str, float]]:
        """Calibrated class probabilities, most likely first."""
        z = self.scores(features) / self.temperature
        e = np.exp(z - z.max())
        p = e / e.sum()
        order = np.argsort(-p, kind="stable")
        return [(self.classes[i], float(p[i])) for i in order]

    def probability_matrix(self, x: Any) -> np.ndarray:
        """Calibrated probabilities for many definitions at once (one row each, columns
        ``classes``): one sparse product for the whole batch, the bulk fast path.  ``x`` is
        the :func:`feature_matrix` of their feature rows (heads that share an index share it)."""
        z = (np.asarray(x @ self.weights) + self.bias) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return p

    def contributions(self, features: Iterable[str], label: str, limit: int = 4) -> list[tuple[str, float]]:
        """The features that pushed hardest toward ``label`` against the other classes (for the rationale)."""
        if label not in self.classes:
            return []
        k = self.classes.index(label)
        present = [f for f in dict.fromkeys(features) if f in self.index]
        if not present:
            return []
        block = self.weights[[self.index[f] for f in present]]
        # Evidence *for* this class against the mean of the others.
        margins = block[:, k] - (block.sum(axis=1) - block[:, k]) / max(1, len(self.classes) - 1)
        found = [(f, float(m)) for f, m in zip(present, margins, strict=True) if m > 0]
        found.sort(key=lambda p: (-p[1], p[0]))
        return found[:limit]

    def to_dict(self) -> dict[str, Any]:
        features = sorted(self.index, key=self.index.__getitem__)
        return {
            "classes": list(self.classes),
            "features": features,
            "weights": self.weights.tolist(),
            "bias": self.bias.tolist(),
            "temperature": self.temperature,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, definition_features: bool = True) -> Head:
        """A head from its stored form; ``definition_features`` heads (category, action,
        privacy) must hold no feature :func:`classifier.features.extract` filters out (the
        privacy head's ``pc:`` category features are never looked up by
        :func:`classifier.features.known_rows`, so they are allowed)."""
        features = data["features"]
        weights = np.asarray(data["weights"], dtype=np.float64)
        classes = tuple(str(c) for c in data["classes"])
        bias = np.asarray(data["bias"], dtype=np.float64)
        if weights.shape != (len(features), len(classes)) or bias.shape != (len(classes),):
            raise ValueError("model file: weights do not match features x classes")
        if not (np.isfinite(weights).all() and np.isfinite(bias).all()) or len(set(classes)) != len(classes):
            raise ValueError("model file: non-finite weights or repeated classes")
        from classifier.features import never_emitted

        stray = never_emitted(str(f) for f in features) if definition_features else []
        if stray:
            # known_rows() skips extract()'s filters on the strength of this invariant.
            raise ValueError(f"model file: features extract() never emits ({', '.join(stray[:3])})")
        return cls(
            classes=classes,
            index={str(f): i for i, f in enumerate(features)},
            weights=weights,
            bias=bias,
            temperature=float(data.get("temperature", 1.0)),
        )


#: Used when the dev split cannot fit a calibrator: the confidence is then the action's probability.
NEUTRAL_CALIBRATOR: tuple[float, ...] = (0.0, 0.0, 1.0, 0.0, 0.0)


@dataclass(frozen=True)
class Model:
    category: Head
    action: Head
    key: str
    trained_on: int
    #: Logistic calibration of "category and action both right", fitted on the dev split
    #: over the inputs :func:`classifier.classify.combine` returns (bias first).
    calibrator: tuple[float, ...] = NEUTRAL_CALIBRATOR
    #: The learned instruction reading (:mod:`classifier.instructions`): ``planted`` or
    #: ``benign`` per sentence; ``None`` when the training data holds no poisoning cases.
    instruction: Head | None = None
    #: The learned privacy reading of reads: ``private`` (the labels' medium reads) or
    #: ``public`` (low), over the same features as the other heads.
    privacy: Head | None = None

    def private(self, features: Iterable[str]) -> float | None:
        """Probability that a read returns private data, or ``None`` without a privacy head:
        the head scored without a category feature, that is as a category with no learned
        weight (web access, which the head never learns from); a verdict adds the weight of
        the category it is read as (:attr:`private_offsets`, :class:`classifier.context.Privacy`)."""
        if self.privacy is None:
            return None
        return dict(self.privacy.probabilities(features)).get(PRIVATE, 0.0)

    @cached_property
    def private_offsets(self) -> dict[str, float]:
        """What reading a tool as each category adds to its privacy log-odds: the privacy
        head learns one weight per labelled category (``pc:`` features), because the rubric
        draws the line between public and private differently in each (a documentation
        search is public, a CRM record private), while the words alone are shared."""
        head = self.privacy
        if head is None:
            return {}
        i, j = head.classes.index(PRIVATE), head.classes.index(PUBLIC)
        return {
            feature[len(CATEGORY_FEATURE) :]: float(head.weights[row, i] - head.weights[row, j]) / head.temperature
            for feature, row in head.index.items()
            if feature.startswith(CATEGORY_FEATURE)
        }

    @cached_property
    def shares_index(self) -> bool:
        """Whether both heads read one feature index (see :func:`share_index`): compared once
        per model, not once per batch (two dicts of tens of thousands of features)."""
        return self.action.index is self.category.index or self.action.index == self.category.index

    @cached_property
    def instruction_reader(self) -> InstructionReader | None:
        from classifier.instructions import InstructionReader

        return InstructionReader(self.instruction) if self.instruction is not None else None

    def confidence(self, inputs: Sequence[float]) -> float:
        z = self.calibrator[0] + sum(w * x for w, x in zip(self.calibrator[1:], inputs, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "key": self.key,
            "trained_on": self.trained_on,
            "category": self.category.to_dict(),
            "action": self.action.to_dict(),
            "calibrator": list(self.calibrator),
            "instruction": self.instruction.to_dict() if self.instruction else None,
            "privacy": self.privacy.to_dict() if self.privacy else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        if data.get("format") != MODEL_FORMAT:
            raise ValueError("model file: unknown format")
        calibrator = tuple(float(w) for w in data["calibrator"])
        if len(calibrator) != len(NEUTRAL_CALIBRATOR) or not all(math.isfinite(w) for w in calibrator):
            raise ValueError("model file: bad calibrator")
        return cls(
            category=Head.from_dict(data["category"]),
            action=Head.from_dict(data["action"]),
            key=str(data["key"]),
            trained_on=int(data["trained_on"]),
            calibrator=calibrator,
            instruction=_binary(data.get("instruction"), (BENIGN, PLANTED), definition_features=False),
            privacy=_binary(data.get("privacy"), (PRIVATE, PUBLIC)),
        )


def _binary(data: dict[str, Any] | None, classes: tuple[str, str], *, definition_features: bool = True) -> Head | None:
    """A stored two-class head, refused (so the cache is retrained) unless it has exactly ``classes``."""
    if not data:
        return None
    head = Head.from_dict(data, definition_features=definition_features)
    if sorted(head.classes) != sorted(classes):
        raise ValueError(f"model file: a head with classes {head.classes}, expected {classes}")
    return head


# --------------------------------------------------------------------------- data


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def training_data_present(directory: Path = DATA_DIR) -> bool:
    return all((directory / name).exists() for name in TRAIN_FILES)


def data_files(directory: Path = DATA_DIR) -> list[Path]:
    return [directory / name for name in (*TRAIN_FILES, DEV_FILE)]


def cache_key(directory: Path = DATA_DIR) -> str:
    """Hash of everything the trained weights depend on."""
    from importlib.metadata import version

    h = hashlib.sha256()
    libs = f"sklearn={version('scikit-learn')};numpy={np.__version__};scipy={version('scipy')}"
    h.update(f"format={MODEL_FORMAT};C={C};rw={RULE_WEIGHT};cw={CLASS_WEIGHT};{libs}".encode())
    # Every module can change the features or the calibrator; the rule files change the features.
    h.update(f"code={code_digest()};rules={rules_digest()}".encode())
    for path in data_files(directory):
        h.update(path.read_bytes())
    return h.hexdigest()


def _cache_dir() -> Path:
    env = os.environ.get("MCP_CATALOG_MODEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mcp-catalog" / "model"


# --------------------------------------------------------------------------- training


def feature_value(feature: str, rule_weight: float = RULE_WEIGHT) -> float:
    """Rule conclusions enter the model with a larger value than single words: one rule
    reading sums up many words, and L2 regularisation should not drown it in them."""
    return rule_weight if feature.startswith(RULE_PREFIXES) else 1.0


def fit_head(
    rows: Sequence[list[str]],
    labels: Sequence[str],
    *,
    c: float = C,
    rule_weight: float = RULE_WEIGHT,
    class_weight: str | None = CLASS_WEIGHT,
    sample_weight: Sequence[float] | None = None,
) -> Head:
    """Fit one multinomial logistic regression; feature values are folded into the stored
    weights, so inference only sums the rows of the features present."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = DictVectorizer(sort=True)
    x = vec.fit_transform([{f: feature_value(f, rule_weight) for f in r} for r in rows])
    from threadpoolctl import threadpool_limits

    clf = LogisticRegression(C=c, max_iter=5000, solver="lbfgs", class_weight=class_weight)
    # One BLAS thread: multi-threaded reductions may differ in the last bit between runs
    # (determinism), and spinning BLAS threads made training 25x slower on a busy machine.
    with threadpool_limits(limits=1):
        clf.fit(x, list(labels), sample_weight=None if sample_weight is None else np.asarray(sample_weight))
    classes = tuple(str(k) for k in clf.classes_)
    names = [str(n) for n in vec.get_feature_names_out()]
    values = np.array([feature_value(n, rule_weight) for n in names])
    raw, intercept = clf.coef_, clf.intercept_
    if len(classes) == 2:  # one score for the second class: as a softmax, the first one's is 0
        raw, intercept = np.vstack([np.zeros_like(raw), raw]), np.concatenate([[0.0], intercept])
    coef = raw.T * values[:, None]  # features x classes, value folded in
    keep = np.abs(coef).max(axis=1) >= PRUNE
    index = {name: i for i, name in enumerate(n for n, k in zip(names, keep, strict=True) if k)}
    weights = np.round(coef[keep], 6)
    bias = np.round(intercept.astype(np.float64), 6)
    return Head(classes, index, weights, bias)


def _fit_head(
    rows: Sequence[list[str]], labels: Sequence[str], dev_rows: Sequence[list[str]], dev_labels: Sequence[str]
) -> Head:
    head = fit_head(rows, labels)
    return Head(head.classes, head.index, head.weights, head.bias, _temperature(head, dev_rows, dev_labels))


def _temperature(head: Head, rows: Sequence[list[str]], labels: Sequence[str]) -> float:
    """Temperature scaling on the dev split: the T that minimises its log-loss (calibration)."""
    if not rows:
        return 1.0
    scores = [head.scores(r) for r in rows]
    gold = [head.classes.index(label) if label in head.classes else -1 for label in labels]

    def nll(t: float) -> float:
        total = 0.0
        for z, g in zip(scores, gold, strict=True):
            if g < 0:
                continue
            zt = z / t
            top = zt.max()
            total += float(top + np.log(np.exp(zt - top).sum()) - zt[g])
        return total

    grid = [round(0.4 + 0.05 * i, 2) for i in range(73)]  # 0.40 .. 4.00
    return min(grid, key=lambda t: (nll(t), t))


def train(rows: Sequence[dict[str, Any]], dev: Sequence[dict[str, Any]] = (), key: str = "") -> Model:
    """Fit both heads on labelled rows (definition fields + ``category`` + ``action``)."""
    from classifier.classify import rule_features, rule_reading

    feats = [rule_features(r) for r in rows]
    dev_read = [rule_reading(r) for r in dev]
    dev_feats = [f for _, _, f in dev_read]
    category, action = share_index(
        _fit_head(feats, [r["category"] for r in rows], dev_feats, [r["category"] for r in dev]),
        _fit_head(feats, [r["action"] for r in rows], dev_feats, [r["action"] for r in dev]),
    )
    calibrator = _fit_calibrator(category, action, dev, dev_read)
    return Model(
        category=category,
        action=action,
        key=key,
        trained_on=len(rows),
        calibrator=calibrator,
        # The instruction reading learns the dev split's benign sentences too: what it gets
        # wrong is a sentence it has never seen, so more benign text is fewer false alarms
        # (its false alarms are measured by server-grouped cross-validation instead:
        # scripts/tune_instructions.py --cv-false-alarms).
        instruction=fit_instruction_head([*rows, *dev]),
        privacy=_fit_privacy_head(rows, feats, dev, dev_feats),
    )


def share_index(first: Head, second: Head) -> tuple[Head, Head]:
    """Both heads on the union of the features either kept (a pruned weight is 0.0 again), so
    the batched model path looks each definition's features up once for both
    (classify._batch_probabilities): pruning each head alone kept different features after
    the 2026-11-26 data change, which made that lookup run twice (a fifth of the model path).
    Scores are unchanged: a pruned weight was below ``PRUNE``, now it is exactly 0."""
    if first.index == second.index:
        return first, second
    union = sorted(first.index.keys() | second.index.keys())
    index = {name: i for i, name in enumerate(union)}

    def widen(head: Head) -> Head:
        weights = np.zeros((len(union), len(head.classes)))
        rows = [index[name] for name in head.index]
        weights[rows] = head.weights[list(head.index.values())]
        return Head(head.classes, index, weights, head.bias, head.temperature)

    return widen(first), widen(second)


def privacy_rows(rows: Sequence[dict[str, Any]]) -> list[int]:
    """Indexes of the rows the privacy head learns from: benign reads labelled low or medium
    (a read is high or critical for other reasons: secrets, poisoning, modifiers), except
    web access, which is medium for being the open web, not for being private."""
    return [
        i
        for i, r in enumerate(rows)
        if r.get("action") == "read"
        and r.get("risk") in ("low", "medium")
        and r.get("category") != "web_access"
        and not r.get("poisoned")
    ]


def _fit_privacy_head(
    rows: Sequence[dict[str, Any]],
    feats: Sequence[list[str]],
    dev: Sequence[dict[str, Any]],
    dev_feats: Sequence[list[str]],
) -> Head | None:
    picked = privacy_rows(rows)
    labels = [PRIVATE if rows[i]["risk"] == "medium" else PUBLIC for i in picked]
    if len(set(labels)) < 2:
        return None
    dev_picked = privacy_rows(dev)
    return _fit_head(
        [[*feats[i], CATEGORY_FEATURE + rows[i]["category"]] for i in picked],
        labels,
        [[*dev_feats[i], CATEGORY_FEATURE + dev[i]["category"]] for i in dev_picked],
        [PRIVATE if dev[i]["risk"] == "medium" else PUBLIC for i in dev_picked],
    )


def fit_instruction_head(
    rows: Sequence[dict[str, Any]], dev: Sequence[dict[str, Any]] = (), c: float | None = None
) -> Head | None:
    """The learned instruction reading, from the sentences of ``rows`` (planted payloads
    against benign tools) and the planted payloads of ``dev`` (its benign tools left out, for
    measuring); ``None`` without poisoning cases to learn from."""
    from classifier.instructions import INSTRUCTION_C, training_pieces
    from classifier.rules import load_rules

    feats, labels = training_pieces(rows, load_rules(), dev)
    if PLANTED not in labels or len(set(labels)) < 2:
        return None
    return fit_head(feats, labels, c=INSTRUCTION_C if c is None else c, class_weight="balanced")


def _fit_calibrator(
    category: Head, action: Head, dev: Sequence[dict[str, Any]], dev_read: Sequence[tuple[Any, Any, list[str]]]
) -> tuple[float, ...]:
    """Logistic regression of "the verdict's category and action are right" on the dev split."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from classifier.classify import combine
    from classifier.context import apply, contexts

    # The dev tools' own probabilities, then each one's server context from its dev siblings,
    # as classify_many() sees a server's tools.
    own = [category.probabilities(feats) for _, _, feats in dev_read]
    matrix = np.array([[dict(p)[c] for c in category.classes] for p in own]).reshape(len(own), len(category.classes))
    found = contexts(matrix, category.classes, [row.get("server") for row in dev], [str(row["name"]) for row in dev])
    xs, ys = [], []
    for row, (rule_cat, rule_act, feats), p_cat, context in zip(dev, dev_read, own, found, strict=True):
        cat, act, inputs = combine(rule_cat, apply(p_cat, context), action.probabilities(feats), rule_act)
        xs.append(inputs)
        ys.append(int(cat == row["category"] and act == row["action"]))
    if len(set(ys)) < 2:
        return NEUTRAL_CALIBRATOR
    with threadpool_limits(limits=1):
        clf = LogisticRegression(C=1.0, max_iter=1000).fit(np.array(xs), np.array(ys))
    return tuple(round(float(w), 6) for w in (clf.intercept_[0], *clf.coef_[0]))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".model-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@lru_cache(maxsize=1)
def load_model(directory: Path = DATA_DIR) -> Model:
    """The trained model: from the JSON cache when its key matches, else trained now and cached.

    A cache that cannot be written (read-only HOME in a sandbox) only costs a retrain in
    the next process; a corrupt cache file is ignored and replaced.
    """
    key = cache_key(directory)
    path = _cache_dir() / f"{key[:24]}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        model = Model.from_dict(data)
        if model.key == key:
            return model
    except (OSError, ValueError, KeyError, TypeError):
        pass
    train_rows = [row for name in TRAIN_FILES for row in read_jsonl(directory / name)]
    dev_path = directory / DEV_FILE
    dev_rows = read_jsonl(dev_path) if dev_path.exists() else []
    model = train(train_rows, dev_rows, key)
    with contextlib.suppress(OSError):
        _write_atomic(path, json.dumps(model.to_dict(), separators=(",", ":")))
    return model


__all__ = ["DATA_DIR", "C", "Head", "Model", "cache_key", "load_model", "read_jsonl", "train"]

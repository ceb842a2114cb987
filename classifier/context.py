"""Server context: what a tool's sibling tools on the same server say about its domain.

A server is usually about one thing: a Stripe server's tools are financial, a Kubernetes
server's are infrastructure.  One tool's own words can mislead (``list_products``,
``get_status`` could belong anywhere); the other tools of its server rarely all do.  The
prior is the mean of the learned model's category probabilities over the server's *other*
tools (leave-one-out: a tool never votes for itself), shrunk toward uniform by
``CONTEXT_PSEUDO`` imaginary siblings (two siblings are weak evidence, forty are not), and it
joins the tool's own probabilities as a product of experts::

    p'(c) ∝ p(c) · (prior(c) + CONTEXT_FLOOR) ** CONTEXT_WEIGHT

Context only decides where the tool's own words leave the model unsure (its top probability
below ``CONTEXT_UNSURE``): a read-only SQL tool on a trading server stays a database tool.
The constants were chosen by server-grouped cross-validation on train + dev (out-of-fold
probabilities; the test split was not used; ``scripts/tune_model.py --context``): on the 508
servers of today's data verdict category on unseen servers is 0.649 without context, 0.707
at the earlier weight 2 and 0.719 at weight 4, within 0.001 of the best for weights 4-8;
weights up to 2 were all the earlier sweeps tried.  A second pass (the siblings voting with
their own priors applied) reached 0.722, but a sibling's first-pass prior holds the tool's
own reading, which so echoed back into its prior (on a two-tool server [0.5, 0.3, 0.2]
became [0.77, 0.16, 0.07], a review showed); done exactly leave-one-out it gained 0.002:
not kept.

The action is the tool's own (siblings say little about whether *this* tool deletes).  The
privacy of a read is the other thing siblings know: a server whose other reads return a
user's account data (orders, messages, records) rarely has one read that returns public
reference data, and the reverse.  A read's learned privacy log-odds are shifted by
``PRIVACY_CONTEXT_WEIGHT`` times the mean log-odds of its server's other reads (shrunk by
``PRIVACY_PSEUDO`` imaginary neutral reads): by server-grouped CV on the 3,604 train + dev
reads labelled low or medium, the privacy reading rose from 0.824 to 0.836 at the shipped cut
(scripts/tune_model.py --privacy-context).  A verdict's own privacy reading then weighs the
categories the tool may be read as by the model's category probabilities (:class:`Privacy`):
the rubric draws the public/private line differently in each.  The siblings' reads enter on
their words alone, as that CV measured them.  Pure and deterministic: the same batch gives
the same priors on every run, whatever its order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np

#: How strongly the siblings' prior counts against the tool's own probabilities.
CONTEXT_WEIGHT = 4.0
#: Added to every prior probability, so no category is ruled out by the siblings alone.
CONTEXT_FLOOR = 0.01
#: Imaginary siblings with a uniform reading mixed into every prior (few siblings, weak prior).
CONTEXT_PSEUDO = 2.0
#: The tool's own top category probability below which its siblings are asked at all.
CONTEXT_UNSURE = 0.9
#: How much of its server's other reads' mean privacy log-odds a read's own is shifted by.
PRIVACY_CONTEXT_WEIGHT = 0.8
#: Imaginary neutral reads (log-odds 0) mixed into that mean: one sibling read is weak evidence.
PRIVACY_PSEUDO = 1.0


class ServerContext(NamedTuple):
    """The category prior one tool gets from the other tools of its server."""

    server: str
    #: How many other tools of the server the prior is the mean of.
    siblings: int
    #: (category, mean probability over the siblings), most likely first.
    prior: tuple[tuple[str, float], ...]
    #: How many of the siblings read as reads, and the shrunk mean of their privacy log-odds
    #: (0.0 where there are none, or without a privacy reading).
    private_siblings: int = 0
    private_logit: float = 0.0


def sibling_sums(
    values: np.ndarray, servers: Sequence[str | None], names: Sequence[str], counted: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the sum of ``values`` (rows x columns) over its server's *other* tools
    that are ``counted`` (all where ``None``), and how many those are.  Rows with the same
    name as the tool itself are not its siblings: a catalogue has one tool per name on a
    server, so such a row is the tool again (a repeated line, or a planted copy in the
    labelled data), and the copies of any one name count as one tool (their mean).

    Vectorised: the sums per server and per (server, name) are two sparse products over the
    whole batch, so the cost is one pass, not a small array operation per tool (this was a
    tenth of the batched model path)."""
    import numpy as np
    from scipy.sparse import csr_matrix

    n = len(servers)
    server_of: dict[str | int, int] = {}
    same_of: dict[tuple[str | int, str], int] = {}
    sid = np.empty(n, dtype=np.int64)
    pid = np.empty(n, dtype=np.int64)
    for i, (server, name) in enumerate(zip(servers, names, strict=True)):
        # A tool without a server is a group of its own (no siblings); its position is the
        # key, which no server name can equal.
        key: str | int = server if server else i
        sid[i] = server_of.setdefault(key, len(server_of))
        pid[i] = same_of.setdefault((key, name), len(same_of))
    weight = np.ones(n) if counted is None else counted.astype(float)
    # Each name counts once on its server: the copies of one tool share one vote (their mean),
    # so a repeated tool weighs on its siblings' priors no more than a single one would.
    copies = np.bincount(pid, weights=weight)[pid]
    weight = np.divide(weight, copies, out=np.zeros(n), where=copies > 0)
    rows = np.arange(n + 1)
    by_server = csr_matrix((weight, sid, rows), shape=(n, len(server_of))).T.tocsr()
    by_same = csr_matrix((weight, pid, rows), shape=(n, len(same_of))).T.tocsr()
    others = np.bincount(sid, weights=weight)[sid] - np.bincount(pid, weights=weight)[pid]
    sums = np.asarray(by_server @ values)[sid] - np.asarray(by_same @ values)[pid]
    return sums, np.rint(others).astype(np.int64)


def sibling_means(
    p: np.ndarray, servers: Sequence[str | None], names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``p``: the mean over its server's *other* tools (shrunk toward uniform
    by ``CONTEXT_PSEUDO``), whether it has any, and how many (:func:`sibling_sums`)."""
    import numpy as np

    sums, others = sibling_sums(p, servers, names)
    uniform = CONTEXT_PSEUDO / max(1, p.shape[1])
    has = others > 0
    # (The denominator of a tool without siblings is never used; 1 keeps it defined when tuning
    # tries CONTEXT_PSEUDO = 0.)
    denominator = np.where(has, others + CONTEXT_PSEUDO, 1.0)[:, None]
    means = np.where(has[:, None], (sums + uniform) / denominator, 0.0)
    return means, has, np.where(has, others, 0)


def privacy_means(
    logits: np.ndarray, reads: np.ndarray, servers: Sequence[str | None], names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """For each tool: the mean privacy log-odds of its server's other *reads* (``reads``
    marks them), shrunk toward 0 by ``PRIVACY_PSEUDO``, and how many there are."""
    import numpy as np

    sums, count = sibling_sums(logits.reshape(-1, 1), servers, names, reads)
    return np.where(count > 0, sums[:, 0] / (count + PRIVACY_PSEUDO), 0.0), count


def logit(p: float) -> float:
    """Log-odds of a probability, kept finite (clamped to [1e-6, 1 - 1e-6])."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def shift_private(private: float, context: ServerContext | None) -> float:
    """A read's learned privacy probability with its server's other reads' reading applied."""
    if context is None or not context.private_siblings:
        return private
    return _sigmoid(logit(private) + PRIVACY_CONTEXT_WEIGHT * context.private_logit)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


class Privacy(NamedTuple):
    """A read's learned privacy reading: the log-odds its own words (and, with a context, its
    server's other reads) give, what reading it as each category adds (``offsets``:
    :attr:`classifier.model.Model.private_offsets`), and the mean of those over the model's
    category probabilities, with its siblings' prior (``expected``) and on its own words
    alone (``expected_alone``).

    The verdict's own reading weighs the categories as the model does (:meth:`overall`): a
    tool the model hesitates over between knowledge and productivity is not judged as if it
    were surely one.  Under doubt the stricter of two weighings counts (the categories as the
    tool's own words give them, or with its siblings' prior): siblings may sharpen a verdict,
    never hide a stricter reading (calculator siblings must not make "read any Jira data"
    public).  A stricter reading weighed under doubt asks as its own category
    (:meth:`as_category`).  The siblings' reads enter on their words alone
    (``PRIVACY_CONTEXT_WEIGHT`` was chosen on those; weighing their categories too let a
    server of calculators make a doubtful Jira read public).  On dev: risk exact 0.833 ->
    0.831, policies no milder than the label's level 0.954 -> 0.960.
    """

    logit: float
    offsets: Mapping[str, float]
    expected: float
    expected_alone: float

    @classmethod
    def of(
        cls,
        private: float,
        context: ServerContext | None,
        offsets: Mapping[str, float],
        p_cat: Sequence[tuple[str, float]],
        p_cat_alone: Sequence[tuple[str, float]],
    ) -> Privacy:
        z = logit(shift_private(private, context))
        return cls(z, offsets, _weighed(offsets, p_cat), _weighed(offsets, p_cat_alone))

    def overall(self, *, sure: bool = True) -> float:
        return _sigmoid(self.logit + (self.expected if sure else max(self.expected, self.expected_alone)))

    def as_category(self, category: str) -> float:
        return _sigmoid(self.logit + self.offsets.get(category, 0.0))


def _weighed(offsets: Mapping[str, float], p_cat: Sequence[tuple[str, float]]) -> float:
    return sum(q * offsets.get(c, 0.0) for c, q in p_cat)


def apply_matrix(p: np.ndarray, servers: Sequence[str | None], names: Sequence[str]) -> np.ndarray:
    """``p`` (tools x categories, rows summing to 1) with each row's server prior applied."""
    import numpy as np

    means, has, _ = sibling_means(p, servers, names)
    has &= p.max(axis=1) < CONTEXT_UNSURE
    if not has.any():
        return p
    adjusted = p * (means + CONTEXT_FLOOR) ** CONTEXT_WEIGHT
    adjusted /= adjusted.sum(axis=1, keepdims=True)
    return np.where(has[:, None], adjusted, p)


def contexts(
    p: np.ndarray,
    classes: Sequence[str],
    servers: Sequence[str | None],
    names: Sequence[str],
    privacy: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[ServerContext | None]:
    """One :class:`ServerContext` per row of ``p`` (``None`` where the tool has no siblings).
    ``privacy`` is every tool's privacy log-odds and whether it reads as a read."""
    means, has, counts = sibling_means(p, servers, names)
    if privacy is not None:
        private_means, private_counts = privacy_means(privacy[0], privacy[1], servers, names)
    out: list[ServerContext | None] = []
    for i, server in enumerate(servers):
        if not has[i] or not server:
            out.append(None)
            continue
        ranked = sorted(zip(classes, means[i].tolist(), strict=True), key=lambda cp: (-cp[1], cp[0]))
        if privacy is None or not private_counts[i]:
            out.append(ServerContext(server, int(counts[i]), tuple(ranked)))
            continue
        shift = round(float(private_means[i]), 6)  # rounded: the same on every machine
        out.append(ServerContext(server, int(counts[i]), tuple(ranked), int(private_counts[i]), shift))
    return out


def apply(p_cat: list[tuple[str, float]], context: ServerContext | None) -> list[tuple[str, float]]:
    """One tool's (category, probability) list, most likely first, with its server prior
    applied (the same arithmetic as :func:`apply_matrix`)."""
    if context is None or not context.prior or not p_cat or p_cat[0][1] >= CONTEXT_UNSURE:
        return p_cat
    prior = dict(context.prior)
    raw = [(c, q * (prior.get(c, 0.0) + CONTEXT_FLOOR) ** CONTEXT_WEIGHT) for c, q in p_cat]
    total = sum(q for _, q in raw) or 1.0
    return sorted(((c, q / total) for c, q in raw), key=lambda cq: -cq[1])

"""``classify(definition) -> Verdict``: rules and a learned model, reading one definition together.

The rules gather the evidence (tokens, verbs, parameters, batch forms) and make a first
reading; the learned model (:mod:`classifier.model`), which sees the same words plus what
the rules concluded, decides category and action with a calibrated probability; the
rubric's risk rules (:mod:`classifier.risk`) then decide the level from category, action
and modifiers, so the rationale always names the rule.  Doubt is never rounded toward
safety: below ``DOUBT`` the strictest plausible reading sets the risk, below
``UNKNOWN_BELOW`` the risk is ``unknown`` (denied by default).

Pure: a definition in, a verdict out; the only I/O is reading the rule files and the
model's training data (or its JSON cache) once per process.
"""

from __future__ import annotations

import gc
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from classifier.analysis import (
    ActionChoice,
    CategoryChoice,
    Facts,
    choose_action,
    choose_category,
    first_sentence,
    gather,
)
from classifier.context import Privacy, ServerContext, apply_matrix, contexts, logit
from classifier.context import apply as apply_context
from classifier.definition import ToolDefinition
from classifier.features import extract, known_rows
from classifier.findings import DECLARED, annotation_mismatch, learned_poisoning, poisoning, scanned_parts
from classifier.risk import PRIVATE_ABOVE, Context, assess, privacy_decides
from classifier.rules import RuleSet, code_digest, load_rules
from classifier.tokens import split_name
from classifier.verdict import ACTIONS, UNKNOWN, Finding, Verdict, risk_rank

if TYPE_CHECKING:  # numpy loads with the model, not with every import of the classifier
    from classifier.model import Model

RULES_VERSION = "rules-0.1"
#: Parameter words worth naming in a rationale: they say what the tool can be made to do.
TELLING_PARAMS = frozenset(
    {
        "amount",
        "price",
        "quantity",
        "qty",
        "recipient",
        "to",
        "email",
        "command",
        "cmd",
        "code",
        "script",
        "sql",
        "query",
        "path",
        "url",
        "leverage",
        "password",
        "secret",
        "token",
    }
)
#: Words that make a telling last word mean something else: a page token, a currency code, a
#: date range's `to`, a model's `max_tokens` (a review found them named as evidence).
_NOT_TELLING = {
    "token": frozenset({"page", "next", "continuation", "cursor", "max", "min", "sync", "limit", "count", "prev"}),
    "code": frozenset(
        {"currency", "country", "language", "lang", "zip", "postal", "status", "error", "http", "response"}
        | {"region", "color", "colour", "product", "promo", "discount", "airport", "iata", "area", "locale"}
        | {"exit", "return", "item", "sku", "unit", "province", "state", "postcode", "phone", "station"}
    ),
    "to": frozenset(
        {"date", "time", "day", "year", "month", "timestamp", "page", "index", "line", "row", "version"}
        | {"currency", "language", "lang", "format", "unit", "timezone", "locale", "type", "status"}
    ),
}


def _telling(name: str) -> bool:
    """Whether a parameter's name says what the tool can be made to do: its last word is one of
    ``TELLING_PARAMS`` (``file_path``, ``recipient_email``), or it starts with ``to`` or a
    recipient (``to_address``, ``emailTo``), and no word around it makes it something else."""
    tokens = split_name(name)
    if not tokens:
        return False
    head = tokens[-1] if tokens[-1] in TELLING_PARAMS else ""
    if not head and tokens[0] in ("to", "recipient"):
        head = tokens[0]
    if not head or (head == "to" and tokens[0] not in ("to", "email", "mail", "send", "forward", "recipient")):
        return False  # `reply_to_message_id`, `moveToTrash`: not a recipient
    return not (_NOT_TELLING.get(head, frozenset()) & set(tokens))


#: Below this joint confidence (category x action) the verdict is in doubt: a stricter
#: plausible reading sets the level the recommended policy follows, and the risk itself where
#: that reading is ``DOUBT_SETS_RISK``.
DOUBT = 0.8
#: The one level doubt alone gives the risk: an irreversible outcome is never risked on a
#: guess, while a stricter reading below it (``medium`` -> ``high``) only tightens the policy
#: (``Verdict.policy_risk``).  On the dev split, raising the risk to every stricter reading
#: cost 2.4 points of risk exact accuracy and rated 51 of the 267 low tools higher, for no
#: critical recall (0.926 either way, 2026-11-26).
DOUBT_SETS_RISK = "critical"
#: A reading the model gives at least this probability is plausible.
ALTERNATIVE = 0.1
#: The model overrides the rules' category only when at least this sure (see :func:`combine`).
#: Chosen by server-grouped cross-validation on train + dev (scripts/tune_model.py --context):
#: verdict category 0.701 at 0.7, 0.717-0.718 from 0.2 to 0.4 (2026-11-26, 6,792 rows); the
#: plateau's most conservative end (closest to the rules) is taken.
CATEGORY_OVERRIDE = 0.4
#: Below this joint confidence the verdict is ``unknown``: the tool is denied until a person decides.
UNKNOWN_BELOW = 0.03

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


@lru_cache(maxsize=1)
def current_model() -> Model | None:
    """The learned model, or ``None`` when it is switched off (``MCP_CATALOG_RULES_ONLY=1``)
    or there is no labelled data to learn from."""
    if os.environ.get("MCP_CATALOG_RULES_ONLY") == "1":
        return None
    from classifier.model import load_model, training_data_present

    return load_model() if training_data_present() else None


def classifier_version(rules: RuleSet | None = None, model: Model | None = None, *, learned: bool = True) -> str:
    """Rules digest, code digest and model key: a change to any marks stored verdicts stale."""
    rules = rules or load_rules()
    version = f"{RULES_VERSION}+{rules.digest[:10]}+c{code_digest()[:6]}"
    model = model or (current_model() if learned else None)
    return f"{version}+m{model.key[:12]}" if model else version


def _confidence(score: float, runner_up: float, action_source: str) -> float:
    if score <= 0:
        return 0.1
    margin = (score - runner_up) / score
    base = 0.55 + 0.4 * margin
    if action_source == "default":
        base -= 0.2
    return round(max(0.05, min(0.99, base)), 3)


#: camelCase steps and separators, so a name's words can be found as written.
_NAME_STEP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[_\-./:]+")


_STARRED = re.compile(r"\*([^*\s][^*]{0,60})\*")


@lru_cache(maxsize=4096)
def _written_form(stem: str) -> re.Pattern[str]:
    """A word whose stem is ``stem`` (``fund`` -> funds, ``reply`` -> replies)."""
    base = re.escape(stem[:-1]) + "(?:y|ie)" if stem.endswith("y") and len(stem) > 2 else re.escape(stem)
    return re.compile(rf"(?<![^\W_]){base}[^\W_]*", re.IGNORECASE)


def _as_written(word: str, defn: ToolDefinition) -> str:
    """``word`` (a stem the rules or the model read) as the definition writes it, lower-cased:
    the name's words first, then the description's; the stem itself where neither has it
    (a review found *fund* quoted for `transfer_funds`)."""
    if not word or not word.isascii():
        return word
    pattern = _written_form(word)
    for text in (_NAME_STEP.sub(" ", defn.name), defn.description[:4000]):
        for m in pattern.finditer(text):
            # The same word, not a longer one it begins (`set` is not in `settings`).
            if split_name(m.group()) == [word]:
                return m.group().lower()
    return word


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
    doubt: tuple[str, str] | None = None,
) -> str:
    what = first_sentence(defn.description) or f"Tool `{defn.name}` (no description)"
    ev: list[str] = []
    if action_verb and action_source in ("name", "description"):
        ev.append(f"verb *{_as_written(action_verb, defn)}* in the {action_source}")
    if cat_evidence:
        ev.append("domain words " + ", ".join(f"*{_as_written(w, defn)}*" for w in cat_evidence[:4]))
    if action_note:
        ev.append(_STARRED.sub(lambda m: f"*{_as_written(m.group(1), defn)}*", action_note))
    text = what if what.endswith(("。", "！", "？")) else what.rstrip(".") + "."
    if ev:
        text += " Evidence: " + "; ".join(ev) + "."
    # "List all channels" is no batch call to speak of: a read's "all" or "many" in its
    # description is left unsaid (the fact still counts for the model and the rules).
    loose = action == "read" and facts.batch in ("all", "many") and facts.batch not in facts.name_tokens
    if facts.batch and not (loose and not facts.max_items):
        limit = f" up to {facts.max_items} items" if facts.max_items else " several items"
        text += f" Acts on{limit} per call (batch form *{_as_written(facts.batch, defn)}*)."
    telling = [p for p in facts.param_names if _telling(p)][:4]
    if telling:
        text += " Parameters: " + ", ".join(f"`{p}`" for p in telling) + "."
    declared = [f"{k}: {str(v).lower()}" for k, v in sorted(facts.annotations.items()) if isinstance(v, bool)]
    if declared:
        text += " Declares " + ", ".join(declared) + "."
    base = rule_id.split(".", 1)[0]
    if risk == UNKNOWN:
        text += f" Risk unknown ({why}): denied until a person classifies it."
    elif doubt is not None:
        # The rule that decided belongs to the stricter reading, so the sentence names it;
        # the tool's own reading is said too, so neither claims the other's rule.
        read_as, own = doubt
        text += (
            f" {CATEGORY_TITLE[category]} + {action} alone ⇒ {own}; in doubt, read as {read_as}"
            f" ⇒ {base} (rule {rule_id}): {why}."
        )
    else:
        text += f" {CATEGORY_TITLE[category]} + {action} ⇒ {base} (rule {rule_id}): {why}."
    for m in modifiers:
        text += f" Modifier: {m}."
    for f in findings:
        text += f" Finding {f.id}: {f.evidence}."
    return text


def rule_reading(
    data: ToolDefinition | Mapping[str, Any], rules: RuleSet | None = None
) -> tuple[CategoryChoice, ActionChoice, list[str]]:
    """The rules' category and action, and the learned model's features, for a definition
    (or a JSONL row)."""
    rules = rules or load_rules()
    defn = data if isinstance(data, ToolDefinition) else ToolDefinition.from_mapping(data)
    facts, cat, act = _rules_read(defn, rules)
    return cat, act, extract(facts, cat, act)


def _rules_read(defn: ToolDefinition, rules: RuleSet) -> tuple[Facts, CategoryChoice, ActionChoice]:
    """The rules' first reading, shared by every path: the facts, their category and action."""
    facts = gather(defn, rules)
    cat = choose_category(facts, rules)
    return facts, cat, choose_action(facts, cat.id, rules)


def rule_features(data: ToolDefinition | Mapping[str, Any], rules: RuleSet | None = None) -> list[str]:
    """The learned model's features for a definition (or a labelled JSONL row)."""
    return rule_reading(data, rules)[2]


@dataclass(frozen=True)
class _Reading:
    """One way to read the tool: a category and an action, with the risk the rubric gives them."""

    category: str
    action: ActionChoice
    findings: tuple[Finding, ...]
    risk: str
    rule_id: str
    why: str
    modifiers: tuple[str, ...]
    #: Where doubt made a stricter reading decide the risk: that reading ("infrastructure +
    #: write") and what the tool's own reading alone would be ("medium (rule medium.write)").
    doubt: tuple[str, str] | None = None
    #: The level the recommended policy follows: ``risk``, or under doubt a stricter
    #: plausible reading's level that did not set the risk (see ``DOUBT_SETS_RISK``).
    policy_risk: str = ""
    #: The learned privacy reading this reading's risk was judged with (``None`` without a
    #: model; a reading merged under doubt keeps none: its risk came from the stricter one).
    private: float | None = None


def _read_as(
    defn: ToolDefinition,
    facts: Facts,
    category: str,
    action: str | None,
    rules: RuleSet,
    poisoned: tuple[Finding, ...],
    private: float | None = None,
) -> _Reading:
    """Risk by the rubric for ``category`` and ``action``; the rules' own action where none is
    given.  ``private`` is the learned privacy reading (for reads), ``None`` without a model."""
    choice = choose_action(facts, category, rules)
    if action is not None and action != choice.id:
        choice = ActionChoice(action, choice.verb if choice.source == "name" else "", "model")
    findings = poisoned + tuple(annotation_mismatch(defn, choice))
    risk, rule_id, why, modifiers = assess(Context(category, choice, facts, findings, rules, private))
    return _Reading(category, choice, findings, risk, rule_id, why, tuple(modifiers), private=private)


def _unknown_reason(rule_action: ActionChoice, category_score: float, described: bool, confidence: float | None) -> str:
    """Why the verdict cannot be trusted at all (risk ``unknown``), or "" when it can."""
    if not described and rule_action.source == "default":
        return "no description and no telling verb in the name"
    if confidence is None:
        return "nothing in the definition points at a domain" if category_score <= 0 else ""
    if confidence < UNKNOWN_BELOW:
        return f"confidence {confidence:.3f} is below {UNKNOWN_BELOW}"
    return ""


def combine(
    rule_category: CategoryChoice,
    p_cat: list[tuple[str, float]],
    p_act: list[tuple[str, float]],
    rule_action: ActionChoice | None = None,
) -> tuple[str, str, list[float]]:
    """Category, action and the inputs of the confidence calibrator.

    The action is the model's (it beat the verb rules on servers it had not seen), except
    where the rubric itself fixes a stricter one (``rule_action.binding``: free-form SQL is
    execute however often read-only query tools were seen).  The category is the rules'
    unless they found no domain word or the model leans to another (``CATEGORY_OVERRIDE``):
    with little data the rules' vocabulary generalised better to unseen servers than the
    learned words; with 600 servers the model is the better reader once it gives another
    category 0.4, and its probability still rates the choice.
    """
    model_category, p_top = p_cat[0]
    if rule_category.score <= 0 or (model_category != rule_category.id and p_top >= CATEGORY_OVERRIDE):
        category = model_category
    else:
        category = rule_category.id
    action, pa = p_act[0]
    if rule_action is not None and rule_action.binding and ACTIONS.index(rule_action.id) > ACTIONS.index(action):
        action, pa = rule_action.id, dict(p_act).get(rule_action.id, 0.0)
    pc = dict(p_cat).get(category, 0.0)
    margin = min(rule_category.score - rule_category.runner_up_score, 10.0) / 10.0
    agree = 1.0 if category == rule_category.id == model_category else 0.0
    return category, action, [logit(pc), logit(pa), margin, agree]


def _words(head_contributions: list[tuple[str, float]], defn: ToolDefinition) -> str:
    shown = list(
        dict.fromkeys(f.split(":", 1)[1] for f, _ in head_contributions if not f.startswith(("r", "f:", "a:")))
    )
    shown = [w for w in shown if not w.startswith("<")]  # `d:<none>`: no description, not a word
    return ", ".join(f"*{_as_written(w, defn)}*" for w in shown[:3])


def _learned_reading(
    defn: ToolDefinition,
    facts: Facts,
    rules: RuleSet,
    model: Model,
    feats: list[str],
    rule_category: CategoryChoice,
    rule_action: ActionChoice,
    p_cat: list[tuple[str, float]],
    p_act: list[tuple[str, float]],
    poisoned: tuple[Finding, ...],
    own: list[tuple[str, float]] | None = None,
    own_confidence: float | None = None,
    private: Privacy | None = None,
) -> tuple[_Reading, float, str, str]:
    """The model's reading, its confidence, a sentence saying what it rests on, and one
    saying what doubt did to the risk ("" when the model was sure enough): apart, because a
    verdict whose risk becomes ``unknown`` must not claim a reading decided it.  ``private``
    is the learned privacy reading of the tool (with its siblings'), ``None`` without one.

    Below ``DOUBT`` the strictest plausible reading (any category or action the model gives
    at least ``ALTERNATIVE``) sets the level the recommended policy follows, so doubt never
    makes a tool's policy milder; it sets the risk too where it is ``DOUBT_SETS_RISK``.
    """
    category, action, inputs = combine(rule_category, p_cat, p_act, rule_action)
    confidence = model.confidence(inputs)
    pc, pa = dict(p_cat).get(category, 0.0), dict(p_act).get(action, 0.0)
    # Doubt is judged on the tool's own words too: siblings that make the model surer of the
    # category must not lift a tool over DOUBT and so skip the stricter plausible readings.
    doubt = confidence if own_confidence is None else min(confidence, own_confidence)
    read_private = None if private is None else private.overall(sure=doubt >= DOUBT)
    best = _read_as(defn, facts, category, action, rules, poisoned, read_private)
    cat_words = _words(model.category.contributions(feats, category, limit=8), defn)
    act_words = _words(model.action.contributions(feats, action, limit=8), defn)
    model_top, p_top = p_cat[0]
    if category == rule_category.id == model_top:
        note = f"Rules and learned model: {category} (model p={pc:.2f})"
    elif category == rule_category.id:
        # The rules' category stood: the model leant elsewhere, not enough to override them.
        note = (
            f"Rules: {category} (the learned model leans to {model_top}, p={p_top:.2f}, below the"
            f" {CATEGORY_OVERRIDE} it needs to override the rules; p({category})={pc:.2f})"
        )
    else:
        note = f"Learned model: {category} (p={pc:.2f}" + (f"; {cat_words}" if cat_words else "") + ")"
    note += f", {action} (p={pa:.2f}" + (f"; {act_words}" if act_words else "") + f"); confidence {confidence:.2f}."
    if doubt < DOUBT <= confidence:  # siblings were asked: own_confidence is the tool's alone
        note += f" On its own words alone the confidence is {doubt:.2f}."
    if doubt >= DOUBT:
        return best, confidence, note, ""
    # Said where the figure shown is the one with its siblings, above DOUBT.
    below = f"Below {DOUBT}" if confidence < DOUBT else f"Below {DOUBT} on its own words"
    strictest = best
    # A category the tool's own words make plausible stays so whatever its siblings say:
    # context may sharpen a verdict, never hide a stricter reading.
    plausible_cats = list(dict.fromkeys(c for c, q in [*p_cat, *(own or ())] if q >= ALTERNATIVE))
    plausible_acts = [a for a, q in p_act if q >= ALTERNATIVE]
    for alt_cat in plausible_cats:
        for alt_act in plausible_acts:
            if (alt_cat, alt_act) == (category, action):
                continue
            alt = _read_as(
                defn,
                facts,
                alt_cat,
                alt_act,
                rules,
                poisoned,
                None if private is None else private.as_category(alt_cat),
            )
            if risk_rank(alt.risk) > risk_rank(strictest.risk):
                strictest = alt
    if strictest is best:
        return best, confidence, note, f" {below}, yet no plausible reading is stricter."
    if strictest.risk != DOUBT_SETS_RISK:
        stricter = f"{CATEGORY_TITLE[strictest.category]} + {strictest.action.id}"
        doubt_note = (
            f" {below}: the recommended policy follows the stricter reading {stricter}"
            f" ⇒ {strictest.risk} (rule {strictest.rule_id}); the risk stays {best.risk},"
            f" as doubt alone raises a risk only to {DOUBT_SETS_RISK}."
        )
        # The verdict's own reading, findings included: an annotation_mismatch of a reading that
        # did not decide would claim the tool does what its verdict says it does not.
        return replace(best, policy_risk=strictest.risk), confidence, note, doubt_note
    doubt_note = (
        f" {below}: risk follows the stricter reading"
        f" {strictest.category} + {strictest.action.id} ({strictest.rule_id})."
    )
    merged = _Reading(
        best.category,
        best.action,
        best.findings + _doubted_mismatches(best, strictest),
        strictest.risk,
        strictest.rule_id,
        strictest.why,
        strictest.modifiers,
        (
            f"{CATEGORY_TITLE[strictest.category]} + {strictest.action.id}",
            f"{best.risk} (rule {best.rule_id}" + "".join(f"; {m}" for m in best.modifiers) + ")",
        ),
    )
    return merged, confidence, note, doubt_note


def _doubted_mismatches(best: _Reading, strictest: _Reading) -> tuple[Finding, ...]:
    """The stricter reading's annotation mismatches that the verdict's own reading lacks,
    said as what they are: the declaration contradicts a plausible reading that set the risk,
    not the action the verdict gives (a review found "the model says *sync* (delete)" on a
    tool the verdict reads as a write)."""
    own = {f.rule for f in best.findings}
    return tuple(
        Finding(
            f.id,
            f"{DECLARED[f.rule]}, yet in doubt the risk follows a plausible"
            f" {strictest.action.id} reading ({CATEGORY_TITLE[strictest.category]} + {strictest.action.id}),"
            f" which that contradicts; the verdict's own reading is {best.action.id}",
            rule=f.rule,
            severe=f.severe,
        )
        for f in strictest.findings
        if f.id == "annotation_mismatch" and f.rule in DECLARED and f.rule not in own
    )


class Prediction(NamedTuple):
    """What the model path alone decides for a tool: category, action, calibrated confidence."""

    category: str
    action: str
    confidence: float


_PAUSE_LOCK = threading.Lock()
_pauses = 0
_collector_was_on = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one batch, then restore its state.

    A batch allocates hundreds of thousands of short-lived, acyclic tuples and lists that
    reference counting frees; the collections those allocations trigger find nothing, yet
    each walks the model's and the rules' large tables: up to 15 % of the model path's time
    (scripts/bench_classify.py).  Batches in several threads share one pause: the collector
    comes back when the last of them ends, as it was before the first."""
    global _pauses, _collector_was_on
    with _PAUSE_LOCK:
        if _pauses == 0:
            _collector_was_on = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _PAUSE_LOCK:
            _pauses -= 1
            if _pauses == 0 and _collector_was_on:
                gc.enable()


def _batch_probabilities(
    defs: Sequence[ToolDefinition], rules: RuleSet, model: Model, *, privacy: bool = False
) -> tuple[list[CategoryChoice], list[ActionChoice], Any, Any, Any]:
    """The rules' reading of every definition and both heads' probabilities over the batch
    (one row per definition; columns the heads' classes), before any server context; with
    ``privacy``, also every definition's privacy reading (``None`` otherwise, or without a
    privacy head)."""
    # The rules' reading of each definition, straight to the rows of the features the model
    # knows: known_rows() is extract() + the index without building the strings (a test
    # checks both agree).  Both heads are fitted on one vocabulary; when pruning kept the
    # same features they share the rows.
    shared = model.shares_index
    heads = [model.category] if shared else [model.category, model.action]
    reads_privacy = privacy and model.privacy is not None
    if reads_privacy:
        assert model.privacy is not None
        heads.append(model.privacy)
    known: list[tuple[list[int], list[int]]] = [([], []) for _ in heads]
    lookups = [head.lookup for head in heads]  # a cached property: read once, not per tool
    cats: list[CategoryChoice] = []
    acts: list[ActionChoice] = []
    for defn in defs:
        facts, cat, act = _rules_read(defn, rules)
        cats.append(cat)
        acts.append(act)
        for (found, starts), lookup in zip(known, lookups, strict=True):
            starts.append(len(found))
            found += known_rows(facts, cat, act, lookup)
    from classifier.model import feature_matrix

    matrices = [feature_matrix(rows, len(head.index)) for rows, head in zip(known, heads, strict=True)]
    p_cat = model.category.probability_matrix(matrices[0])
    p_act = model.action.probability_matrix(matrices[0 if shared else 1])
    p_private = heads[-1].probability_matrix(matrices[-1]) if reads_privacy else None
    return cats, acts, p_cat, p_act, p_private


def server_contexts(defs: Sequence[ToolDefinition], rules: RuleSet | None = None) -> list[ServerContext | None]:
    """Each definition's server context from the others in ``defs`` with the same ``server``
    (pass all of a server's tools together); ``None`` for all without a learned model.  The
    context carries the category prior and, for reads, the privacy of the server's other
    reads (a tool reads as a read where the action head's top class is ``read``)."""
    import numpy as np

    from classifier.model import PRIVATE

    model = current_model()
    if model is None or not defs:
        return [None] * len(defs)
    _, _, p_cat, p_act, p_private = _batch_probabilities(defs, rules or load_rules(), model, privacy=True)
    privacy = None
    if p_private is not None and model.privacy is not None:
        q = np.clip(p_private[:, model.privacy.classes.index(PRIVATE)], 1e-6, 1 - 1e-6)
        reads = p_act.argmax(axis=1) == model.action.classes.index("read")
        # The siblings' reads on their words alone (PRIVACY_CONTEXT_WEIGHT was chosen on
        # those): weighing their categories too let a server of calculators make a doubtful
        # "get a Jira issue" public, which the tool's own weighing guards against (review).
        privacy = (np.log(q / (1 - q)), reads)
    servers, names = [d.server for d in defs], [d.name for d in defs]
    return contexts(p_cat, model.category.classes, servers, names, privacy)


def predict(defs: Sequence[ToolDefinition], rules: RuleSet | None = None) -> list[Prediction]:
    """The model path, batched: the rules' reading as features, both heads over the whole batch,
    each tool's server context from its siblings in the batch, the same combination and
    calibration :func:`classify_many` uses (which adds the rubric's risk rules, the poisoning
    scan and the rationale on top)."""
    rules = rules or load_rules()
    model = current_model()
    if model is None:
        raise RuntimeError("no learned model: the labelled data is missing or MCP_CATALOG_RULES_ONLY=1")
    if not defs:
        return []
    with _collector_paused():
        return _predict(defs, rules, model)


def _predict(defs: Sequence[ToolDefinition], rules: RuleSet, model: Model) -> list[Prediction]:
    import numpy as np

    cats, acts, p_cat, p_act, _ = _batch_probabilities(defs, rules, model)
    p_cat = apply_matrix(p_cat, [d.server for d in defs], [d.name for d in defs])
    # combine(), vectorised over the batch (a test checks both give the same answers).
    n = len(cats)
    cat_classes, act_classes = model.category.classes, model.action.classes
    col = {c: i for i, c in enumerate(cat_classes)}
    rows = np.arange(n)
    top_c = p_cat.argmax(axis=1)
    p_top = p_cat[rows, top_c]
    rule_col = np.array([col.get(c.id, -1) for c in cats], dtype=np.intp)
    rule_score = np.array([c.score for c in cats])
    margin = np.minimum(np.array([c.score - c.runner_up_score for c in cats]), 10.0) / 10.0
    use_model = (rule_score <= 0) | ((top_c != rule_col) & (p_top >= CATEGORY_OVERRIDE))
    chosen = np.where(use_model, top_c, rule_col)
    pc = np.where(chosen >= 0, p_cat[rows, np.maximum(chosen, 0)], 0.0)
    top_a = p_act.argmax(axis=1)
    # A binding rule action stricter than the model's stands (as in combine()).
    act_col = {a: i for i, a in enumerate(act_classes)}
    rank = np.array([ACTIONS.index(a) for a in act_classes])
    bound = np.array([act_col.get(a.id, -1) if a.binding else -1 for a in acts], dtype=np.intp)
    stricter = (bound >= 0) & (rank[np.maximum(bound, 0)] > rank[top_a])
    top_a = np.where(stricter, bound, top_a)
    pa = p_act[rows, top_a]
    agree = ((chosen == rule_col) & (chosen == top_c)).astype(float)
    pc, pa = np.clip(pc, 1e-6, 1 - 1e-6), np.clip(pa, 1e-6, 1 - 1e-6)
    inputs = np.column_stack([np.log(pc / (1 - pc)), np.log(pa / (1 - pa)), margin, agree])
    w = np.asarray(model.calibrator)
    confidence = 1.0 / (1.0 + np.exp(-np.clip(w[0] + inputs @ w[1:], -30.0, 30.0)))
    return [
        Prediction(cat_classes[c] if use else cats[i].id, act_classes[a], conf)
        for i, (c, use, a, conf) in enumerate(
            zip(chosen.tolist(), use_model.tolist(), top_a.tolist(), confidence.tolist(), strict=True)
        )
    ]


def classify_many(
    defs: Sequence[ToolDefinition], rules: RuleSet | None = None, *, learned: bool = True
) -> list[Verdict]:
    """Classify many definitions, each with the server context of its siblings among them
    (definitions with the same ``server``): how a catalogue classifies a server's tools."""
    rules = rules or load_rules()
    with _collector_paused():
        found = server_contexts(defs, rules) if learned else [None] * len(defs)
        return [classify(d, rules, learned=learned, context=c) for d, c in zip(defs, found, strict=True)]


def _context_note(context: ServerContext, category: str, own_top: str) -> str:
    """What the siblings said, for the rationale; says so when they changed the category."""
    top, q = context.prior[0]
    text = f"Server context: {context.siblings} other tool{'s' * (context.siblings != 1)} of {context.server}"
    text += f" read mostly as {top} (mean p={q:.2f})"
    if category != own_top:
        text += f"; on its own words alone the model would say {own_top}"
    return text + "."


def classify(
    defn: ToolDefinition,
    rules: RuleSet | None = None,
    *,
    learned: bool = True,
    context: ServerContext | None = None,
) -> Verdict:
    """Classify one definition.  ``learned=False`` gives the rules-only verdict (for comparison);
    ``context`` is the prior its server's other tools give (:func:`classify_many` builds it)."""
    rules = rules or load_rules()
    facts, cat, act = _rules_read(defn, rules)
    scanned = scanned_parts(defn)  # read once for the rules and the learned reading
    poisoned = tuple(poisoning(defn, rules, scanned))
    model = current_model() if learned else None
    if not poisoned and model is not None and model.instruction_reader is not None:
        # The rules first (their findings name the rule); the learned reading where they saw nothing.
        poisoned = tuple(learned_poisoning(defn, rules, model.instruction_reader, scanned))
    context_note = ""
    own_private: Privacy | None = None
    private: Privacy | None = None
    if model is None:
        reading = _read_as(defn, facts, cat.id, None, rules, poisoned)
        confidence = _confidence(cat.score, cat.runner_up_score, act.source)
        note = doubt_note = ""
        version = classifier_version(rules, learned=False)
    else:
        feats = extract(facts, cat, act)
        own = model.category.probabilities(feats)
        p_cat = apply_context(own, context)
        p_act = model.action.probabilities(feats)
        # The tool's reading on its own words, once, where its siblings were asked: doubt is
        # judged on it too, and the rationale names its category.
        alone = combine(cat, own, p_act, act) if context is not None and p_cat is not own else None
        words_private = model.private(feats)
        if words_private is not None:
            # Its siblings inform it twice: their reads' privacy, and the category they make
            # likelier (Privacy.overall: never more public under doubt).
            own_private = Privacy.of(words_private, None, model.private_offsets, own, own)
            private = Privacy.of(words_private, context, model.private_offsets, p_cat, own)
        reading, confidence, note, doubt_note = _learned_reading(
            defn,
            facts,
            rules,
            model,
            feats,
            cat,
            act,
            p_cat,
            p_act,
            poisoned,
            own,
            model.confidence(alone[2]) if alone else None,
            private,
        )
        if context is not None and alone is not None:
            context_note = " " + _context_note(context, reading.category, alone[0])
        version = classifier_version(rules, model)
    risk, rule_id, why, modifiers = reading.risk, reading.rule_id, reading.why, list(reading.modifiers)
    findings = list(reading.findings)
    reason = None
    if rule_id != "critical.poisoning":
        reason = _unknown_reason(act, cat.score, bool(defn.description.strip()), confidence if model else None)
    if reason:
        risk, rule_id, why, modifiers = UNKNOWN, "unknown.evidence", reason, []
    evidence = cat.evidence if reading.category == cat.id else ()
    rationale = _rationale(
        defn,
        facts,
        reading.category,
        evidence,
        reading.action.verb,
        reading.action.source,
        reading.action.note,
        reading.action.id,
        risk,
        rule_id,
        why,
        modifiers,
        findings,
        reading.doubt if risk != UNKNOWN else None,
    )
    # An unknown risk was not decided by any reading, so the doubt sentence is left out.
    note += ("" if risk == UNKNOWN else doubt_note) + context_note
    if (
        context is not None
        and own_private is not None
        and risk != UNKNOWN
        and reading.private is not None
        and (own_private.overall() >= PRIVATE_ABOVE) != (reading.private >= PRIVATE_ABOVE)
        and privacy_decides(reading.category, reading.action.id, rule_id)
    ):
        # Only where the siblings decided: they moved the reading across the cut, and the
        # privacy reading is what set this verdict's level.
        n, reads = context.siblings, context.private_siblings
        how = f"{reads} of them read{'s' * (reads != 1)}" if reads else "through the category they make likelier"
        note += (
            f" The {n} other tool{'s' * (n != 1)} of its server ({how})"
            f" moved its privacy reading from p={own_private.overall():.2f} to {reading.private:.2f},"
            f" across the cut {PRIVATE_ABOVE}."
        )
    if note:
        rationale += " " + note.lstrip()
    return Verdict(
        category=reading.category,
        action=reading.action.id,
        risk=risk,
        policy_risk=reading.policy_risk if risk != UNKNOWN and reading.policy_risk else risk,
        rationale=rationale,
        findings=tuple(findings),
        confidence=round(confidence, 3),
        risk_rule=rule_id,
        classifier_version=version,
        evidence=tuple(evidence),
    )

"""Loading the rule files under ``classifier/rules/``.

Rules are data so that adding a keyword or a poisoning pattern never needs Python; this
module turns the TOML into frozen lookup tables once per process and fingerprints them, so
a changed rule file changes the classifier version (and stored verdicts get recomputed).
"""

from __future__ import annotations

import bisect
import hashlib
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

from classifier.tokens import stem, words
from classifier.verdict import ACTIONS, CATEGORIES

RULES_DIR = Path(__file__).parent / "rules"
RULE_FILES = ("categories.toml", "actions.toml", "poisoning.toml")


@dataclass(frozen=True)
class CategoryRule:
    id: str
    strong: frozenset[str]
    terms: frozenset[str]
    phrases: tuple[str, ...]
    elsewhere: frozenset[str]
    must_match: tuple[dict[str, Any], ...]
    must_not_match: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class PoisoningRule:
    id: str
    why: str
    pattern: re.Pattern[str]
    requires: tuple[tuple[str, ...], ...]  # each group must have one of its words in the text
    must_match: tuple[str, ...]
    must_not_match: tuple[str, ...]
    #: Words just before a match that make it harmless ("The password should not be shown to
    #: the user" keeps a secret out of the reply; it hides nothing from the user).
    unless_before: re.Pattern[str] | None = None
    #: What the rule reads: ``"text"``, every text a model reads (:func:`classifier.findings.scanned_text`);
    #: ``"names"``, only the input schema's property names, each read as words on a line of its
    #: own: what a parameter is *called* can ask for what no description may say without being
    #: read as prose (``kubeconfig_file_content``); ``"values"``, only its enum values, defaults,
    #: consts and examples, one per line: a value is a choice the model makes, so words in it that
    #: tell the model what to choose or hide are aimed at the model, where in a description they
    #: may be advice to the user.
    where: Literal["text", "names", "values"] = "text"
    #: A match is excused when the tool's own name (as words), description or title matches
    #: this: a tool that says it works with kubeconfigs may ask for one's contents.
    unless_described: re.Pattern[str] | None = None

    def gated_in(self, gate_text: str, raw: str = "") -> bool:
        """Whether every ``requires`` group has a word in the text (lower-cased, whitespace
        collapsed: :func:`gate_text`); a rule gated out is not run at all (speed).  A gate
        made of whitespace alone (padding) is looked for in the ``raw`` text."""
        return all(
            any((word in raw) if word.isspace() else (word in gate_text) for word in group) for group in self.requires
        )

    #: A rule written as ``left``, at most ``gap`` characters of one line, ``right`` (its
    #: ``pattern`` is the three joined): found by pairing the parts' own matches, since the
    #: joined pattern tries every gap length against every alternative of ``right`` at every
    #: ``left`` (a description of "cat cat cat ..." took 20 microseconds a character: seconds
    #: for one tool, a crawl's worth for a hostile server).
    near: tuple[re.Pattern[str], int, re.Pattern[str]] | None = None

    def find(self, text: str) -> re.Match[str] | None:
        """The first match the rule stands by (one ``unless_before`` does not excuse).  Every
        match is looked at: excused decoys must not be able to bury a real instruction, and
        the patterns are bounded, so this stays linear in the (capped) text."""
        for m in self.pattern.finditer(text) if self.near is None else self._near(text):
            if self.unless_before is None or not self.unless_before.search(text, max(0, m.start() - 80), m.start()):
                return m
        return None

    def _near(self, text: str) -> Iterator[re.Match[str]]:
        """The joined pattern's matches, found from where the parts match: for each ``right``
        match, the nearest ``left`` match ending within ``gap`` characters before it on its line
        is confirmed by the joined pattern at that start (one bounded attempt)."""
        assert self.near is not None
        left, gap, right = self.near
        lefts = [(m.start(), m.end()) for m in left.finditer(text)]
        if not lefts:
            return
        ends = [end for _, end in lefts]
        for r in right.finditer(text):
            i = bisect.bisect_right(ends, r.start()) - 1
            while i >= 0 and ends[i] >= r.start() - gap:
                if "\n" not in text[ends[i] : r.start()]:
                    m = self.pattern.match(text, lefts[i][0])
                    if m is not None:
                        yield m
                        break
                i -= 1


@dataclass(frozen=True)
class Concept:
    """A concept of the learned instruction reading (poisoning.toml ``[[concept]]``): a
    feature of a sentence when its pattern is found there.  Patterns are matched against
    lower-cased text and written in lower case."""

    id: str
    why: str
    pattern: re.Pattern[str]
    must_match: tuple[str, ...]
    #: Whether the concept turns a sentence toward the model (see ``instructions.gate_plan``).
    aimed: bool = False
    #: Benign wordings it once caught and must not again.
    must_not_match: tuple[str, ...] = ()


def gate_text(text: str) -> str:
    """The text the rules' gates look at: lower-cased with runs of whitespace collapsed, as
    the patterns (``\\s{1,8}``) accept any run between words."""
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class RuleSet:
    categories: tuple[CategoryRule, ...]
    verb_action: dict[str, str]
    financial_objects: frozenset[str]
    money_verbs: frozenset[str]
    value_verbs: frozenset[str]
    money_objects: frozenset[str]
    code_params: frozenset[str]
    query_params: frozenset[str]
    query_languages: tuple[str, ...]
    read_only_phrases: tuple[str, ...]
    overwrite_phrases: tuple[str, ...]
    operation_params: frozenset[str]
    action_cases: tuple[dict[str, Any], ...]
    poisoning: tuple[PoisoningRule, ...]
    digest: str
    #: Words one of which is in every read-only / overwrite phrase (:func:`anchors`).
    read_only_anchors: tuple[str, ...] = ()
    overwrite_anchors: tuple[str, ...] = ()
    concepts: tuple[Concept, ...] = ()
    concept_pairs: tuple[tuple[str, str], ...] = ()
    #: A parameter whose name ends in one of ``code_suffixes`` after one of ``code_qualifiers``
    #: (``checker_code``, ``js_script``) holds code too (stems, as :func:`name_parts` gives them).
    code_suffixes: frozenset[str] = frozenset()
    code_qualifiers: frozenset[str] = frozenset()


def anchors(phrases: tuple[str, ...]) -> tuple[str, ...]:
    """A few words such that every phrase contains one of them (greedy set cover over the
    phrases' own words).  A text without any of them holds none of the phrases, so one or two
    substring scans stand in for a scan per phrase; the answer is the same."""
    left = set(phrases)
    chosen: list[str] = []
    while left:
        candidates = sorted({w for p in left for w in re.findall(r"[a-z0-9]+", p)} or left)
        best = max(candidates, key=lambda w: (sum(w in p for p in left), len(w)))
        chosen.append(best)
        left = {p for p in left if best not in p}
    return tuple(chosen)


def _stems(values: list[str]) -> frozenset[str]:
    return frozenset(stem(v) for v in values)


def _joined_pattern(rule: dict[str, Any]) -> str:
    """A rule's ``pattern``, or its ``left``, ``gap`` and ``right`` joined (``left``, at most
    ``gap`` characters of one line, ``right``)."""
    if "left" in rule:
        return f"{rule['left']}[^\\n]{{0,{int(rule['gap'])}}}{rule['right']}"
    return str(rule["pattern"])


def _where(rule: dict[str, Any]) -> Literal["text", "names", "values"]:
    """A poisoning rule's ``where``, checked: a typo must fail at load, not on every schema."""
    where = rule.get("where", "text")
    if where not in ("text", "names", "values"):
        raise ValueError(f"poisoning.toml: rule {rule.get('id')!r} has where = {where!r} (text, names or values)")
    return cast(Literal["text", "names", "values"], where)


def _gates(spec: list[Any]) -> tuple[tuple[str, ...], ...]:
    """``requires`` is one list of words (any must occur) or a list of such lists (each must)."""
    if not spec:
        return ()
    groups = spec if isinstance(spec[0], list) else [spec]
    return tuple(tuple(w.lower() for w in group) for group in groups)


def _load(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def rules_digest(directory: Path = RULES_DIR) -> str:
    h = hashlib.sha256()
    for name in RULE_FILES:
        h.update((directory / name).read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def code_digest() -> str:
    """Hash of the classifier's own modules: a change to any of them can change verdicts
    (the classifier version) and the trained weights (the model's cache key)."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=4)
def load_rules(directory: Path = RULES_DIR) -> RuleSet:
    cats = _load(directory / "categories.toml")["category"]
    seen = [c["id"] for c in cats]
    if sorted(seen) != sorted(CATEGORIES):
        raise ValueError(f"categories.toml must define exactly the rubric's categories, got {seen}")
    categories = tuple(
        CategoryRule(
            id=c["id"],
            strong=_stems(c.get("strong", [])),
            terms=_stems(c.get("terms", [])),
            phrases=tuple(p.lower() for p in c.get("phrases", [])),
            elsewhere=_stems(c.get("elsewhere", [])),
            must_match=tuple(c.get("must_match", [])),
            must_not_match=tuple(c.get("must_not_match", [])),
        )
        for c in cats
    )

    acts = _load(directory / "actions.toml")
    verb_action: dict[str, str] = {}
    for entry in acts["action"]:
        if entry["id"] not in ACTIONS:
            raise ValueError(f"actions.toml: unknown action {entry['id']!r}")
        for verb in entry["verbs"]:
            for form in {verb.lower(), stem(verb)}:
                # A verb listed under two actions keeps the stronger one.
                old = verb_action.get(form)
                if old is None or ACTIONS.index(entry["id"]) > ACTIONS.index(old):
                    verb_action[form] = entry["id"]
    fin = acts["financial"]
    exe = acts["execution"]

    poison_file = _load(directory / "poisoning.toml")
    pois = poison_file["rule"]
    concepts = tuple(
        Concept(
            c["id"],
            c["why"],
            re.compile(c["pattern"]),
            tuple(c["must_match"]),
            bool(c.get("aimed")),
            tuple(c.get("must_not_match", [])),
        )
        for c in poison_file.get("concept", [])
    )
    known = {c.id for c in concepts}
    pairs = tuple((str(a), str(b)) for a, b in poison_file.get("concept_pairs", []))
    if unknown := sorted({c for pair in pairs for c in pair} - known):
        raise ValueError(f"poisoning.toml: concept_pairs name unknown concepts {unknown}")
    poisoning = tuple(
        PoisoningRule(
            id=r["id"],
            why=r["why"],
            pattern=re.compile(_joined_pattern(r), re.IGNORECASE),
            near=(
                (re.compile(r["left"], re.IGNORECASE), int(r["gap"]), re.compile(r["right"], re.IGNORECASE))
                if "left" in r
                else None
            ),
            requires=_gates(r.get("requires", [])),
            must_match=tuple(r.get("must_match", [])),
            must_not_match=tuple(r.get("must_not_match", [])),
            unless_before=re.compile(r["unless_before"], re.IGNORECASE) if r.get("unless_before") else None,
            where=_where(r),
            unless_described=re.compile(r["unless_described"], re.IGNORECASE) if r.get("unless_described") else None,
        )
        for r in pois
    )
    return RuleSet(
        categories=categories,
        verb_action=verb_action,
        financial_objects=_stems(fin["objects"]),
        money_verbs=_stems(fin["money_verbs"]),
        value_verbs=_stems(fin.get("value_verbs", [])),
        money_objects=_stems(fin["money_objects"]),
        code_params=frozenset(p.lower() for p in exe["code_params"]),
        query_params=frozenset(p.lower() for p in exe["query_params"]),
        code_suffixes=_stems(exe.get("code_suffixes", [])),
        code_qualifiers=_stems(exe.get("code_qualifiers", [])),
        query_languages=tuple(q.lower() for q in exe["query_languages"]),
        read_only_phrases=(read_only := tuple(q.lower() for q in exe["read_only_phrases"])),
        overwrite_phrases=(overwrite := tuple(q.lower() for q in exe["overwrite_phrases"])),
        operation_params=frozenset(p.lower() for p in exe["operation_params"]),
        action_cases=tuple(acts.get("cases", {}).get("must_match", [])),
        poisoning=poisoning,
        digest=rules_digest(directory),
        read_only_anchors=anchors(read_only),
        overwrite_anchors=anchors(overwrite),
        concepts=concepts,
        concept_pairs=pairs,
    )


def description_verbs(text: str, rules: RuleSet, limit: int = 40) -> list[str]:
    """Verbs of the description's first sentence(s) that the action table knows."""
    return [w for w in words(text, limit=limit) if w in rules.verb_action]

"""Reading a definition: which domain it touches and what it does to it.

Everything here is evidence gathering.  Each decision keeps the words that made it, so
the rationale can name them and a person can check them against the definition.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from classifier.definition import MAX_ANALYSED_DESCRIPTION, ToolDefinition
from classifier.rules import RuleSet
from classifier.tokens import distinct, name_parts, split_name, words
from classifier.verdict import ACTIONS, CATEGORIES

#: Words that are verbs in some names and nouns in others (``order_status``,
#: ``post_tweet``): a name's unambiguous verb wins over them.
AMBIGUOUS_VERBS = frozenset(
    {
        "order",
        "trade",
        "transfer",
        "swap",
        "bid",
        "fund",
        "stake",
        "text",
        "page",
        "message",
        "call",
        "post",
        "log",
        "record",
        "schedule",
        "tag",
        "label",
        "branch",
        "process",
        "stage",
        "type",
        "sum",
        "mail",
        "email",
        "comment",
        "book",
        "charge",
        "refund",
        "payout",
        "deposit",
        "quote",
        "status",
        "history",
        "info",
        "detail",
        "screenshot",
        "snapshot",
        "config",
        "link",
        "draft",
        "python",
        "shell",
        "bash",
        "javascript",
        "sms",
        "tweet",
        "dm",
        "webhook",
        "echo",
        "batch",
        "test",
        "lock",
        "short",
        "long",
        "tip",
        "claim",
        "wrap",
        "capture",
        "sign",
        "like",
        "star",
        "bridge",
        "burn",
        "mint",
        "invite",
        "share",
        "file",
        "stop",
        "start",
        "build",
        "set",
        "export",
        "import",
        "diff",
        "review",
        "audit",
        "track",
        "poll",
        "scale",
        "cmd",
        "sh",
        "zsh",
        "powershell",
        "monitor",
    }
)
BATCH_WORDS = frozenset({"batch", "bulk", "multiple", "many", "all", "mass"})
PATH_PARAMS = frozenset(
    {
        "path",
        "file",
        "filepath",
        "file_path",
        "filename",
        "dir",
        "directory",
        "folder",
        "root",
        "dest",
        "destination",
        "source_path",
        "target",
        "url",
        "uri",
        "href",
        "endpoint",
        "link",
        "webhook_url",
        "paths",
        "files",
        "urls",
        "attachment",
        "attachments",
        "cwd",
        "output_path",
        "input_path",
    }
)
SECRET_WORDS = frozenset(
    {
        "secret",
        "password",
        "passphrase",
        "private",
        "credential",
        "token",
        "apikey",
        "mnemonic",
        "seed",
        "keypair",
        "pem",
        "key",
    }
)
GRANT_WORDS = frozenset(
    {
        "create",
        "grant",
        "add",
        "assign",
        "attach",
        "elevate",
        "revoke",
        "rotate",
        "reset",
        "put",
        "invite",
        "enable",
        "impersonate",
        "promote",
        "generate",
        "issue",
        "set",
        "update",
        "delete",
        "remove",
        "disable",
    }
)
ACCESS_OBJECTS = frozenset(
    {
        "key",
        "token",
        "credential",
        "password",
        "role",
        "permission",
        "policy",
        "access",
        "group",
        "member",
        "user",
        "secret",
        "certificate",
        "privilege",
        "admin",
        "acl",
        "grant",
        "mfa",
        "sso",
    }
)
PUBLIC_FINANCE = frozenset(
    {
        "price",
        "ticker",
        "quote",
        "market",
        "candle",
        "kline",
        "ohlc",
        "orderbook",
        "depth",
        "rate",
        "exchange",
        "symbol",
        "chart",
        "news",
        "indicator",
        "stock",
        "funding",
        "volume",
        "book",
        "public",
        "listing",
        "pair",
        "gas",
        "fee",
        "trending",
        "coin",
        "token",
        "analysis",
        "sentiment",
        "instrument",
    }
)
PRIVATE_FINANCE = frozenset(
    {
        "account",
        "balance",
        "wallet",
        "portfolio",
        "position",
        "transaction",
        "payment",
        "invoice",
        "customer",
        "order",
        "trade",
        "deposit",
        "withdrawal",
        "withdraw",
        "statement",
        "holding",
        "subscription",
        "payout",
        "refund",
        "charge",
        "card",
        "bank",
        "my",
        "user",
        "asset",
        "open",
        "pnl",
        "transfer",
        "liquidation",
        "revenue",
        "activity",
        "activitie",
    }
)
PRIVATE_KNOWLEDGE = frozenset({"memory", "memorie", "entity", "entitie", "observation", "relation", "graph", "note"})
CRYPTO_VALUE = frozenset(
    {
        "eth",
        "btc",
        "sol",
        "usdc",
        "usdt",
        "token",
        "coin",
        "crypto",
        "transaction",
        "fund",
        "money",
        "payment",
        "ether",
        "lamport",
        "sat",
        "wei",
        "native",
        "asset",
        "nft",
    }
)
#: What an account holds: converting or exchanging it moves value.
VALUE_HELD = frozenset({"dust", "bnb", "asset", "coin", "token", "crypto", "balance", "position", "currency", "fund"})
_MAX_ITEMS = re.compile(
    r"\b(?:max(?:imum)?|up to|at most)\s*(?:of\s*)?(\d{1,6})\b"
    r"(?!\s*(?:characters?|chars?|bytes?|[kmg]b|length|tokens?|seconds?|minutes?|hours?|days?|%|words?|lines?)\b)",
    re.IGNORECASE,
)
#: A sentence ends at . ! ? before a space, and at a CJK full stop (no space follows one) unless
#: a closing bracket or quote does.
_SENTENCE = re.compile(r"(?<=[.!?])\s|(?<=[。！？])(?![」』）)\]\"”’])")


#: How many description words feed the learned model (:mod:`classifier.features`): the
#: opening states the purpose; later paragraphs are usage notes that blur it.
MODEL_WORDS = 80


class Facts(NamedTuple):
    """What the definition shows, extracted once and shared by every later step.

    Named tuples, not frozen dataclasses, for this and the two choices: they are built for
    every verdict, and a frozen dataclass's ``__init__`` costs several times more."""

    name_tokens: tuple[str, ...]
    desc_words: tuple[str, ...]
    #: The first ``MODEL_WORDS`` of ``desc_words``, each once, in order: the learned model's
    #: description features and the start of the category words (both would dedupe them).
    desc_distinct: tuple[str, ...]
    desc_lower: str
    param_names: tuple[str, ...]
    param_tokens: frozenset[str]
    server_tokens: tuple[str, ...]
    code_params: tuple[str, ...] = ()
    path_params: tuple[str, ...] = ()
    batch: str = ""
    max_items: int | None = None
    read_only_query: bool = False
    operation_values: tuple[str, ...] = ()
    annotations: Mapping[str, Any] = MappingProxyType({})
    overwrite_params: tuple[str, ...] = ()
    overwrite_phrase: str = ""

    @property
    def all_tokens(self) -> frozenset[str]:
        return frozenset(self.name_tokens) | frozenset(self.desc_words[:60]) | self.param_tokens


class CategoryChoice(NamedTuple):
    id: str
    score: float
    runner_up: str
    runner_up_score: float
    evidence: tuple[str, ...]


class ActionChoice(NamedTuple):
    id: str
    verb: str
    source: str  # "name", "description", "operation enum", "code parameter", "financial object", "default"
    note: str = ""
    #: The rubric itself fixes this action (the strongest operation of an enum, free-form code
    #: is execute, overwriting without history is delete): the learned model may read the tool
    #: as stricter, never as milder (see :func:`classifier.classify.combine`).
    binding: bool = False


#: Abbreviations whose full stop ends no sentence ("Get an invoice by name (e.g. INV-001).").
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|cf|approx|incl|eg|ie|nr|mr|mrs|dr|al)|\b[a-z]\.[a-z])\.$", re.I)


def first_sentence(text: str, limit: int = 160) -> str:
    """The description's opening sentence (what the rationale quotes), within ``limit``."""
    text = " ".join(text[: limit * 4].split())
    sentence = text
    for end in _SENTENCE.finditer(text):
        if not _ABBREVIATION.search(text[max(0, end.start() - 12) : end.start()]):
            sentence = text[: end.start()]
            break
    if len(sentence) > limit:
        sentence = sentence[: limit - 1].rstrip() + "…"
    return sentence


#: Switches that make a write replace or discard what was there ("overwrite without history").
OVERWRITE_PARAMS = frozenset({"overwrite", "force", "force_overwrite", "replace", "hard", "force_push"})
#: A ``force`` flag forces a discard (git push --force, checkout -f, an existing file written
#: over) unless its own description says it forces something harmless, and says no discard:
#: git add's "Allow adding otherwise ignored files", "Force installation even if already
#: installed", "Whether to force re-scan".  Harmless is the exception to name, not the rule: a
#: review found "Force push (use with caution)", "强制推送" and "Write even if the file
#: already exists" read as plain writes when discarding had to be named.
_FORCE_DISCARDS = re.compile(
    r"overwrit|discard|delet|remov|safety|irreversib|destroy|\blos[et]\b|replac|wipe|clobber|reset"
    r"|uncommitted|unsaved|history|kill|terminat|prune|purge|\bpush|already\s{1,8}exists?|throw\w{0,3}\s{1,8}away"
    r"|confirm|bypass\w{0,3}\s{1,8}(\w{1,20}\s{1,8})?(safety|checks?|protection|guard|hooks?|verif|validation)",
    re.IGNORECASE,
)
_FORCE_HARMLESS = re.compile(
    r"\bignored\b|already\s{1,8}installed|\bre-?install|\bre-?scan|\bre-?run|\brefresh|\bre-?fetch|\bre-?index"
    r"|\bre-?build|\bre-?generate|\bre-?compute|\bre-?download|\bcache",
    re.IGNORECASE,
)


def _discarding_flag(low: str, schema: Mapping[str, Any]) -> bool:
    """Whether a boolean switch named in OVERWRITE_PARAMS discards what was there: by its name,
    except ``force``, which does unless its description names only something harmless
    (:data:`_FORCE_HARMLESS`)."""
    if low not in OVERWRITE_PARAMS or schema.get("type") not in ("boolean", None):
        return False
    doc = schema.get("description")
    if low != "force" or not isinstance(doc, str):
        return True
    head = doc[:500]
    return _FORCE_DISCARDS.search(head) is not None or _FORCE_HARMLESS.search(head) is None


#: The same switches as values of an operation-like enum.
OVERWRITE_VALUES = frozenset({"force", "overwrite", "force-push", "force_push"})

#: Last words of a parameter name that make it a path or an address (``folderPath``, ``imageUrl``).
LOCATION_WORDS = frozenset({"path", "url", "uri", "dir", "directory", "folder", "endpoint", "href", "webhook"})


def _names_a_location(low: str, tokens: tuple[str, ...]) -> bool:
    """Whether a parameter (its name lower-cased, and split) is a path or an address."""
    if low in PATH_PARAMS or low.endswith(("_path", "_url", "_file", "_dir")):
        return True
    return bool(tokens) and tokens[-1] in LOCATION_WORDS


#: A parameter description that opens by saying what it takes is a location ("Audio URL or
#: base64", "URL of the page", "Path to the output file", "URLs to crawl"), whatever the
#: parameter is named; not a method, JSON, key, request or cookie path, an IMAP mailbox path,
#: a route, nor a URL filter, template, scheme or separator, nor a path *to* a field.
_NOT_A_PLACE_BEFORE = (
    "method|json|key|field|property|attribute|object|dot|jq|module|class|config|nested|api|mailbox|route"
    "|request|cookie|endpoint|webpage"
)
_NOT_A_PLACE_AFTER = (
    r"-safe|-encod|slug|param|segment|prefix|filter|substring|pattern|namespace|separator|encod|template"
    r"|length|depth|scheme|limit|style|format|component|expression|(?:to|of|in) (?:the |a |an )?"
    r"(?:property|field|key|value|attribute|element|node|item|json|setting)\b"
)
_LOCATION_DESCRIBED = re.compile(
    rf"(?:the |an? )?(?!(?:{_NOT_A_PLACE_BEFORE})[ -])(?:[a-z0-9]+[ -])?"
    rf"(?:url|uri|path|file ?path|web ?hook url)s?\b(?! ?(?:{_NOT_A_PLACE_AFTER}))",
    re.IGNORECASE,
)


def _described_as_location(schema: Mapping[str, Any]) -> bool:
    doc = schema.get("description")
    return type(doc) is str and _LOCATION_DESCRIBED.match(doc) is not None


def _nested(props: Mapping[str, Any], depth: int = 0) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """Properties of object parameters (and of objects inside arrays), two levels deep at most,
    as (path from the tool's own parameter, name, schema): the rationale names
    ``spec.file_path``, not a ``file_path`` the tool does not take."""
    if depth >= 2:
        return
    for outer, schema in props.items():
        for node, step in ((schema, "."), (schema.get("items"), "[].")):
            if type(node) is dict and type(node.get("properties")) is dict:
                inner = {str(k): v for k, v in node["properties"].items() if type(v) is dict}
                for key, found in inner.items():
                    yield f"{outer}{step}{key}", key, found
                for path, leaf, deeper in _nested(inner, depth + 1):
                    yield f"{outer}{step}{path}", leaf, deeper


def _unconstrained_string(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if kind not in (None, "string", ["string"]) and not (isinstance(kind, list) and "string" in kind):
        if kind != "array":
            return False
        items = schema.get("items")
        return isinstance(items, Mapping) and _unconstrained_string(items)
    return "enum" not in schema and "pattern" not in schema and "const" not in schema


#: Name verbs of a tool that makes or changes a stored thing.
STORING_VERBS = frozenset({"create", "update", "add", "set", "edit", "modify", "save", "define", "register", "new"})


def _stored_methods(values: list[str], name_tokens: tuple[str, ...]) -> bool:
    """Whether an operation enum is HTTP methods (it holds GET and POST, WebDAV's or not) of
    something the tool stores: they are the tool's own operations when it sends a request
    (``curl``, ``postgrestRequest``), and a field of what it keeps when its name creates or
    updates one (Postman's ``updateCollectionRequest`` sends nothing; read as a delete, a
    review found it critical)."""
    lowered = {v.lower() for v in values}
    return "get" in lowered and "post" in lowered and any(t in STORING_VERBS for t in name_tokens)


#: An operation parameter without an enum that lists its values in prose ("Operation to
#: perform: create-workflow, delete-workflow, get-workflow"): the list, as if it were the enum.
_LISTED = re.compile(
    r"\b(?:operations?|actions?|values?|one of|modes?|commands?)\b[^:\n.]{0,30}:\s*"
    r"((?:[A-Za-z][\w-]{0,60}(?:\s{0,3}[,|/]\s{0,3}|\s{1,3}or\s{1,3})){1,40}[A-Za-z][\w-]{0,60})",
    re.IGNORECASE,
)
_LIST_SEPARATOR = re.compile(r"\s*[,|/]\s*|\s+or\s+")


def _listed_operations(schema: Mapping[str, Any]) -> list[str]:
    """The operations an enum-less operation parameter names in its description."""
    doc = schema.get("description")
    if not isinstance(doc, str) or ":" not in doc:
        return []
    m = _LISTED.search(doc[:2000])
    return [v for v in _LIST_SEPARATOR.split(m.group(1)) if v][:64] if m else []


#: Words that, just before a phrase, say the opposite ("never overwrites the entire note").
_NEGATION = re.compile(r"\b(?:not|never|no|without|won't|doesn't|don't|cannot|can't|isn't|aren't)\s+(?:[a-z]+\s+)?$")


def _said(phrases: tuple[str, ...], text: str, anchors: tuple[str, ...] = ()) -> str:
    """The first of ``phrases`` that the text says, not denies.  ``anchors`` (one of which
    every phrase contains, :func:`classifier.rules.anchors`) let most texts be ruled out in
    a scan or two."""
    if anchors and not any(a in text for a in anchors):
        return ""
    for phrase in phrases:
        at = text.find(phrase)
        while at >= 0:
            if not _NEGATION.search(text, max(0, at - 30), at):
                return phrase
            at = text.find(phrase, at + 1)
    return ""


def gather(defn: ToolDefinition, rules: RuleSet) -> Facts:
    desc = defn.description[:MAX_ANALYSED_DESCRIPTION]
    desc_lower = desc.lower()
    name_tokens = name_parts(defn.name)
    desc_words = tuple(words(desc, limit=120))  # nothing reads further than the 120th word
    props = defn.properties()
    param_names = tuple(props)
    split = {p: name_parts(p) for p in param_names}  # each parameter name is split once
    param_tokens = frozenset(t for toks in split.values() for t in toks)
    # One pass over the parameters collects every kind the later steps ask about.
    code: list[str] = []
    query: list[str] = []
    paths: list[str] = []
    overwrite: list[str] = []
    operation_values: list[str] = []
    nested = False
    # `strategy: force` discards what was there, and so does `mode: hard` on a reset (git
    # reset --hard); a hard quota does not.
    overwrite_values = OVERWRITE_VALUES | {"hard"} if "reset" in name_tokens else OVERWRITE_VALUES
    # The rule set's tables as locals: it is a plain-Python object, read once, not per parameter.
    code_names, code_suffixes, code_qualifiers = rules.code_params, rules.code_suffixes, rules.code_qualifiers
    query_names, operation_names = rules.query_params, rules.operation_params
    for p, s in props.items():
        low = p.lower()
        tokens = split[p]
        if (
            low in code_names or (len(tokens) >= 2 and tokens[-1] in code_suffixes and tokens[-2] in code_qualifiers)
        ) and _unconstrained_string(s):
            code.append(p)
        if low in query_names and _unconstrained_string(s):
            query.append(p)
        if _unconstrained_string(s) and (_names_a_location(low, tokens) or _described_as_location(s)):
            paths.append(p)
        if _discarding_flag(low, s):
            overwrite.append(p)
        if low in operation_names:
            enum = s.get("enum")
            values = [str(v) for v in enum[:64]] if isinstance(enum, list) else _listed_operations(s)
            if values and not _stored_methods(values, name_tokens):
                operation_values.extend(values)
                overwrite += [f"{p}={v}" for v in values if v.lower() in overwrite_values]
        nested = nested or "properties" in s or "items" in s
    if query and any(lang in desc_lower for lang in rules.query_languages):
        code += query
    code_params, path_params = tuple(code), tuple(paths)
    if not path_params and nested:
        # A location can sit one or two levels down (``spec.git.repo_clone_url``).
        path_params = tuple(
            path
            for path, p, s in _nested(props)
            if _names_a_location(p.lower(), name_parts(p)) and _unconstrained_string(s)
        )
    batch = next((t for t in name_tokens if t in BATCH_WORDS), "")
    if not batch:
        batch = next((w for w in desc_words[:30] if w in BATCH_WORDS), "")
    if not batch:
        batch = next(
            (
                p
                for p, s in props.items()
                if s.get("type") == "array"
                and split[p][-1:] != ("path",)
                and any(t in rules.financial_objects or t in {"id", "item", "record", "message"} for t in split[p])
            ),
            "",
        )
    # The regex only runs when one of its anchors is there (most descriptions have none).  It
    # reads the text as written, case-blind: lower() is not case folding (a review found
    # "at moſt 3" and "maxİmum 5" read differently on the lower-cased text).
    anchored = "max" in desc_lower or "up to" in desc_lower or "at most" in desc_lower
    m = _MAX_ITEMS.search(desc) if anchored else None
    return Facts(
        name_tokens=name_tokens,
        desc_words=desc_words,
        desc_distinct=tuple(dict.fromkeys(desc_words[:MODEL_WORDS])),
        desc_lower=desc_lower,
        param_names=param_names,
        param_tokens=param_tokens,
        # The server's own name, not its namespace: "io.github.acme/stripe-mcp" -> stripe.
        server_tokens=name_parts((defn.server or "").rsplit("/", 1)[-1]),
        code_params=code_params,
        path_params=path_params,
        batch=batch,
        max_items=int(m.group(1)) if m else None,
        read_only_query=bool(_said(rules.read_only_phrases, desc_lower, rules.read_only_anchors)),  # not denied
        operation_values=tuple(operation_values),
        annotations=dict(defn.annotations),
        overwrite_params=tuple(overwrite),
        overwrite_phrase=_said(rules.overwrite_phrases, desc_lower, rules.overwrite_anchors),
    )


@dataclass(frozen=True)
class _CategoryIndex:
    """The category word lists turned inside out: word -> [(category, is_strong)].

    Scoring then costs one lookup per word instead of one per word and category.  A
    category is its position in ``CATEGORIES`` here: the scores are a list, not a dict.
    """

    # What a description word adds, (category, weight, is_strong), and the phrases it is the
    # key word of, (category, phrase): one lookup per distinct word of a text gives both.
    desc: dict[str, tuple[tuple[tuple[int, float, bool], ...], tuple[tuple[int, str], ...]]]
    # What a word adds in each other place (name, parameter, server name): (category, weight).
    name: dict[str, tuple[tuple[int, float], ...]]
    param: dict[str, tuple[tuple[int, float], ...]]
    server: dict[str, tuple[tuple[int, float], ...]]
    phrase_order: dict[tuple[int, str], int]
    elsewhere: tuple[tuple[int, frozenset[str]], ...]


_INDEXES: dict[str, _CategoryIndex] = {}
#: Each category's position in ``CATEGORIES`` (the rubric's order, which breaks ties).
_CATEGORY_AT = {c: i for i, c in enumerate(CATEGORIES)}
_DATABASE, _CODE_EXECUTION = _CATEGORY_AT["database"], _CATEGORY_AT["code_execution"]


#: Words never used as a phrase's key (nearly every description has them).
_FUNCTION_WORDS = frozenset(
    {"the", "a", "an", "to", "of", "in", "on", "for", "and", "or", "from", "with", "by", "as", "at"}
)


def _phrase_index(rules: RuleSet) -> dict[str, tuple[tuple[int, str], ...]]:
    """Phrases by their longest word (stemmed): a phrase is only looked for when that word is
    among the description's words.  Keyed by the first word, "the" and "a" made every tool
    try a dozen phrases; the longest word is rarely in a text that lacks the phrase."""
    table: dict[str, list[tuple[int, str]]] = {}
    for rule in rules.categories:
        for phrase in rule.phrases:
            found = words(phrase)
            # The longest word that is not a function word ("the web" is keyed by "web");
            # max() keeps the first of equals.
            key = max(found, key=lambda w: (w not in _FUNCTION_WORDS, len(w))) if found else ""
            table.setdefault(key, []).append((_CATEGORY_AT[rule.id], phrase))
    return {key: tuple(v) for key, v in table.items()}


def _category_index(rules: RuleSet) -> _CategoryIndex:
    index = _INDEXES.get(rules.digest)
    if index is None:
        table: dict[str, list[tuple[int, bool]]] = {}
        for rule in rules.categories:  # keys interned, as the stems looked up are (tokens.stem)
            for w in rule.strong:
                table.setdefault(sys.intern(w), []).append((_CATEGORY_AT[rule.id], True))
            for w in rule.terms - rule.strong:
                table.setdefault(sys.intern(w), []).append((_CATEGORY_AT[rule.id], False))

        def weighted(strong: float, term: float) -> dict[str, tuple[tuple[int, float], ...]]:
            return {w: tuple((c, strong if s else term) for c, s in v) for w, v in table.items()}

        desc = {w: tuple((c, 1.5 if s else 0.5, s) for c, s in v) for w, v in table.items()}
        phrases = _phrase_index(rules)  # stem of a phrase's key word -> (category, phrase)
        index = _CategoryIndex(
            desc={w: (desc.get(w, ()), phrases.get(w, ())) for w in desc.keys() | phrases.keys()},
            name=weighted(4.0, 2.5),
            param=weighted(1.0, 0.3),
            server=weighted(5.0, 1.0),
            phrase_order={
                (_CATEGORY_AT[rule.id], p): i
                for i, (rule, p) in enumerate((r, p) for r in rules.categories for p in r.phrases)
            },
            elsewhere=tuple((_CATEGORY_AT[rule.id], rule.elsewhere) for rule in rules.categories if rule.elsewhere),
        )
        _INDEXES[rules.digest] = index
    return index


def choose_category(facts: Facts, rules: RuleSet) -> CategoryChoice:
    index = _category_index(rules)
    scores: list[float] = [0.0] * len(CATEGORIES)
    evidence: list[tuple[int, str]] = []  # (category, word); only the winner's are kept
    distinct_desc = list(facts.desc_distinct)
    if len(facts.desc_words) > MODEL_WORDS:  # the category reads 120 words, the model 80
        seen = set(distinct_desc)
        distinct_desc += [w for w in dict.fromkeys(facts.desc_words[MODEL_WORDS:120]) if w not in seen]
    server = [t for t in distinct(facts.server_tokens) if t not in {"mcp", "server", "local"}]
    name_weights = index.name
    for tok in distinct(facts.name_tokens):
        for c, weight in name_weights.get(tok, ()):
            scores[c] += weight
            evidence.append((c, tok))
    desc_index = index.desc
    # A phrase is only looked for when its key word is in the text at all; candidates are
    # tried in the rule files' order, so scores and evidence never depend on the text's order.
    candidates: list[tuple[int, str]] = []
    for w in distinct_desc:
        found = desc_index.get(w)
        if found is None:
            continue
        weights, phrases = found
        for c, weight, strong in weights:
            scores[c] += weight
            if strong:  # a general word adds weight, never evidence
                evidence.append((c, w))
        if phrases:
            candidates += phrases
    desc_lower = facts.desc_lower
    if candidates:
        for c, phrase in sorted(candidates, key=index.phrase_order.__getitem__):
            if phrase in desc_lower:
                scores[c] += 2.0
                evidence.append((c, phrase))
    param_weights = index.param
    for tok in sorted(facts.param_tokens):
        for c, weight in param_weights.get(tok, ()):
            scores[c] += weight
    for tok in server:
        # A server is usually named for its domain (stripe, kubernetes, excel): on servers
        # never seen before this was the most reliable single signal (scripts/tune_model.py data).
        for c, weight in index.server.get(tok, ()):
            scores[c] += weight
    context: frozenset[str] | None = None
    for c, elsewhere in index.elsewhere:
        if scores[c] <= 0:
            continue
        if context is None:
            context = frozenset(facts.name_tokens) | frozenset(distinct_desc[:60]) | frozenset(server)
        if context & elsewhere:
            # The words say the thing lives somewhere else (a file in a GitHub repository is not local).
            scores[c] *= 0.2
    if facts.code_params and scores[_DATABASE] < scores[_CODE_EXECUTION] + 1:
        scores[_CODE_EXECUTION] += 2.0
    # Highest score first; exact ties go to the earlier category in the rubric's order (a
    # strict ``>`` keeps the first of equals), as a stable descending sort would.
    best = second = -1
    best_score = second_score = 0.0
    for c, score in enumerate(scores):
        if best < 0 or score > best_score:
            second, second_score, best, best_score = best, best_score, c, score
        elif second < 0 or score > second_score:
            second, second_score = c, score
    return CategoryChoice(
        id=CATEGORIES[best],
        score=scores[best],
        runner_up=CATEGORIES[second],
        runner_up_score=scores[second],
        evidence=tuple(dict.fromkeys(w for c, w in evidence if c == best))[:6],
    )


def _name_verb(tokens: tuple[str, ...], rules: RuleSet) -> str:
    verbs = [t for t in tokens if t in rules.verb_action]
    if not verbs:
        return ""
    if "or" in tokens or "and" in tokens:
        return max(verbs, key=lambda v: ACTIONS.index(rules.verb_action[v]))
    clear = [v for v in verbs if v not in AMBIGUOUS_VERBS]
    return clear[0] if clear else verbs[-1]


def choose_action(facts: Facts, category: str, rules: RuleSet) -> ActionChoice:
    verb = _name_verb(facts.name_tokens, rules)
    source = "name"
    if verb in AMBIGUOUS_VERBS:
        # `git_branch` may create or list: the description's opening verb says which.
        opening = [w for w in facts.desc_words[:6] if w in rules.verb_action and w not in AMBIGUOUS_VERBS]
        if opening:
            verb, source = opening[0], "description"
    if not verb:
        first = [w for w in facts.desc_words[:15] if w in rules.verb_action]
        clear = [w for w in first if w not in AMBIGUOUS_VERBS]
        verb = (clear or first or [""])[0]
        source = "description"
    action = rules.verb_action.get(verb, "")
    if not action:
        action, source = "read", "default"
    choice = ActionChoice(action, verb, source)

    if facts.operation_values:
        ops = [
            (v, rules.verb_action[t]) for v in facts.operation_values for t in split_name(v) if t in rules.verb_action
        ]
        if ops:
            op_verb, op_action = max(ops, key=lambda o: ACTIONS.index(o[1]))
            if ACTIONS.index(op_action) > ACTIONS.index(choice.id):
                choice = ActionChoice(
                    op_action,
                    op_verb,
                    "operation enum",
                    "strongest of its operations: " + ", ".join(facts.operation_values[:8]),
                    binding=True,
                )

    if facts.code_params and category in {
        "code_execution",
        "database",
        "browser_automation",
        "infrastructure",
        "system_device",
    }:
        if category == "database" and facts.read_only_query:
            if choice.id not in ("read",) and choice.source == "name":
                pass
            else:
                choice = ActionChoice(
                    "read",
                    choice.verb or "query",
                    "code parameter",
                    f"free-form query text ({facts.code_params[0]}) declared read-only",
                )
        elif ACTIONS.index(choice.id) < ACTIONS.index("execute"):
            choice = ActionChoice(
                "execute",
                facts.code_params[0],
                "code parameter",
                f"takes free-form code or commands in `{facts.code_params[0]}`",
                binding=True,
            )

    if category == "financial":
        objects = [t for t in facts.name_tokens if t in rules.financial_objects]
        if not objects and choice.source != "name":
            objects = [w for w in facts.desc_words[:25] if w in rules.financial_objects]
        value = [t for t in facts.name_tokens if t in CRYPTO_VALUE]
        if (
            choice.id in ("write", "delete")
            and objects
            and (choice.verb in rules.money_verbs or choice.id == "delete" or choice.verb in {"place", "add", "new"})
            and objects[0] not in {"invoice", "subscription"}
        ):
            choice = ActionChoice(
                "transact", choice.verb, choice.source, f"*{choice.verb}* on *{objects[0]}* moves value or commitments"
            )
        elif choice.verb in rules.value_verbs and (objects or value or set(facts.name_tokens) & VALUE_HELD):
            choice = ActionChoice("transact", choice.verb, choice.source, f"*{choice.verb}* on held assets moves value")
        elif choice.id == "send" and (objects or value):
            choice = ActionChoice(
                "transact", choice.verb, choice.source, f"sends *{(objects or value)[0]}*: moves value"
            )
    elif choice.id == "transact" and choice.source != "operation enum":
        # Outside finance a "transfer" moves files and an "order" sorts: a reversible write.
        choice = ActionChoice("write", choice.verb, choice.source, "transaction verb outside a financial domain")

    if facts.overwrite_params and choice.id in ("write", "execute") and category != "utility":
        flag = facts.overwrite_params[0]
        choice = ActionChoice(
            "delete", choice.verb, choice.source, f"`{flag}` replaces or discards without history", binding=True
        )
    elif facts.overwrite_phrase and choice.id == "write" and category != "utility":
        choice = ActionChoice(
            "delete",
            choice.verb,
            choice.source,
            f"the description says it *{facts.overwrite_phrase}*: no history kept",
            binding=True,
        )

    if category == "utility" and choice.id == "write" and not facts.path_params:
        choice = ActionChoice("read", choice.verb, choice.source, "pure computation: no external effect")
    return choice

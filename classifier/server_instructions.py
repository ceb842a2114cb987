"""``scan_instructions(text) -> findings``: poisoning in what a server tells the model.

A server's ``initialize`` result may carry ``instructions``, which clients put in the model's
context beside the server's tools.  A planted payload there works as one in a tool's
description does, for every tool of the server at once, so the text is read by the same
poisoning rules.

Not by all of them.  Instructions are written *to the model* and are *about the server's own
tools*: "Use `get-roots-list` before file operations", "prefer `search_docs` for questions
about this library", "always call `resolve-library-id` first" are what the field is for.
The rules whose only evidence is that a text orders the model's use of tools, or addresses
the model at all, would call every honest server's instructions poisoned: they are left out
(``ORDINARY_IN_INSTRUCTIONS``) unless what they quote names a tool that is none of the
server's own (shadowing).  What stays is what no server's instructions need: hiding things
from the user, reading the user's credentials and files, sending data out, overriding the
client's own instructions, giving orders about other servers' tools, skipping the user's
approval, invisible characters and encoded payloads.

The learned instruction reading (``LEARNED``) reads them too where the rules found nothing.
It rates how much a sentence reads like the payloads planted for a model, not how much it
speaks to the model (it learned from tool descriptions that do that honestly too).  It reads
instructions because it raised no alarm on those of 46 real servers
(classifier/data/server_instructions.jsonl); what it finds there is reported by
scripts/measure_instructions.py.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import replace

from classifier.definition import ToolDefinition
from classifier.findings import DESCRIPTION_LIMIT, learned_poisoning, poisoning, scanned_parts
from classifier.rules import RuleSet, load_rules
from classifier.verdict import Finding

#: Poisoning rules whose evidence is ordinary in server instructions (see the module's text).
ORDINARY_IN_INSTRUCTIONS = frozenset(
    {
        "tool-order",  # "call X before Y"
        "tool-priority",
        "tool-preference",  # "prefer this server's search for ..."
        "tool-hook-when",  # "when you use X, first call Y"
        "cross-tool-hook",
        "forward-to-tool",  # "pass the results of X to Y"
        "model-note-i18n",  # addresses the model, in another language: instructions do
    }
)

#: Whether the learned instruction reading reads instructions too (see the module's text).
LEARNED = True

#: How a finding names where it read the text it quotes.
PLACE = "the server's instructions"


#: A tool named where a hook or an ordering names one: "when send_email is used", "call
#: `track_usage`", "the read_file tool", "before create_issue".  Snake-case only: a hyphenated
#: English word ("up-to-date") is no tool name; "use" and "run" are left out, as they name
#: parameters as often ("use page_size to keep results small").
_TOOL_NAMED = re.compile(
    r"""(?:\bwhen(?:ever)?|\bevery\s+time|\beach\s+time|\bcall|\binvoke|\bafter|\bbefore)"""
    r"""\s+(?:the\s+|a\s+|an\s+|any\s+)?[`'"]?([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b"""
    r"""|\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)[`'"]?\s+(?:tool\b|is\s+(?:used|called|invoked|run))""",
    re.IGNORECASE,
)
#: Where a sentence ends, for reading a quote's whole sentence.
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")


def _sentence_of(quote: str, text: str) -> str:
    """The sentence(s) of ``text`` a finding's quote (cut short, maybe mid-word) comes from: a
    tool name cut in half by the quote is read whole (`lve_library_id` was "another tool")."""
    at = text.find(quote) if quote else -1
    if at < 0:
        return quote
    starts = [m.end() for m in _SENTENCE_END.finditer(text, 0, at)]
    start = starts[-1] if starts else 0
    end_match = _SENTENCE_END.search(text, at + len(quote))
    return text[start : end_match.start() if end_match else len(text)]


def foreign_tools(evidence: str, tools: Collection[str] | None, text: str = "") -> list[str]:
    """Tool names the sentence a finding quotes (from ``text``, the instructions) names in
    tool position that are none of the server's own ``tools`` (none when those are unknown)."""
    if tools is None:
        return []
    start, end = evidence.find("“"), evidence.rfind("”")
    quoted = evidence[start + 1 : end] if 0 <= start < end else evidence
    sentence = _sentence_of(quoted.strip("…"), text)
    own = {t.lower() for t in tools}
    named = [a or b for a, b in _TOOL_NAMED.findall(sentence)]
    return list(dict.fromkeys(n for n in named if n.lower() not in own))


def scan_instructions(
    text: str,
    length: int | None = None,
    rules: RuleSet | None = None,
    *,
    tools: Collection[str] | None = None,
    learned: bool = LEARNED,
) -> tuple[Finding, ...]:
    """The poisoning findings in a server's instructions.  ``length`` is how long the text the
    server sent was, when only its start was kept (past the scan's cap it is a finding, as an
    oversized description is); ``tools`` the names of the server's own tools, where known: an
    ordering or hook that names another tool is shadowing, not instructions; ``learned``
    whether the learned instruction reading reads the text where the rules found nothing."""
    rules = rules or load_rules()
    # Read as the description of a tool that has nothing else: the rules' places, caps, decoding
    # and invisible-character checks are a description's.
    defn = ToolDefinition(name="instructions", description=text)
    scanned = scanned_parts(defn, described_as=PLACE)
    found: list[Finding] = []
    for f in poisoning(defn, rules, scanned):
        if f.rule in ORDINARY_IN_INSTRUCTIONS:
            foreign = foreign_tools(f.evidence, tools, text)
            if not foreign:
                continue  # the server ordering its own tools: what instructions are for
            named = ", ".join(f"`{n}`" for n in foreign)
            f = replace(f, evidence=f"{f.evidence}; {named} is none of the server's own tools")
        found.append(f)
    if not found and learned:
        from classifier.classify import current_model

        model = current_model()
        if model is not None and model.instruction_reader is not None:
            found = learned_poisoning(defn, rules, model.instruction_reader, scanned)
    sent = max(length or 0, len(text))
    if sent > DESCRIPTION_LIMIT and not any(f.rule == "oversized-text" for f in found):
        found.append(
            Finding(
                "tool_poisoning",
                f"{sent:,} characters of instructions: text past {DESCRIPTION_LIMIT:,} is not read,"
                " and nothing legitimate needs that much",
                rule="oversized-text",
                severe=True,
            )
        )
    return tuple(
        Finding(f.id, f.evidence.replace("-character description:", "-character instructions text:"), f.rule, f.severe)
        for f in found
    )

"""The learned model: trained from the committed labelled data, cached as JSON, deterministic,
and careful when unsure (doubt raises the risk, it never lowers it)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from classifier import CATEGORIES, ToolDefinition, classify, classify_many
from classifier.classify import ALTERNATIVE, DOUBT, UNKNOWN_BELOW, current_model, predict, rule_features
from classifier.model import DATA_DIR, Head, Model, cache_key, load_model, read_jsonl, train
from classifier.verdict import ACTIONS, RISK_LEVELS, risk_rank

SPLITS = ("train", "dev", "test")
#: The module, not the function the package re-exports under the same name.
classify_module = importlib.import_module("classifier.classify")


def split_rows(name: str) -> list[dict]:
    return read_jsonl(DATA_DIR / f"{name}.jsonl")


# --------------------------------------------------------------------------- the labelled data


def test_labelled_data_meets_the_floors() -> None:
    rows = [r for s in SPLITS for r in split_rows(s) if not r["provenance"].get("derived")]
    servers = {r["server"] for r in rows}
    assert len(rows) >= 2000
    assert len(servers) >= 150
    assert set(Counter(r["category"] for r in rows)) == set(CATEGORIES)
    for r in rows:
        assert r["category"] in CATEGORIES and r["action"] in ACTIONS and r["risk"] in RISK_LEVELS, r["name"]
        assert len(r["reason"]) > 20, r["name"]
        prov = r["provenance"]
        assert prov["registry"] in ("pypi", "npm") and prov["package"] == r["server"], r["name"]
        assert prov["introspected"] and "reviewed" in prov["label"], r["name"]


def test_splits_never_share_a_server() -> None:
    servers = {s: {r["server"] for r in split_rows(s)} for s in SPLITS}
    assert not servers["train"] & servers["dev"]
    assert not servers["train"] & servers["test"]
    assert not servers["dev"] & servers["test"]


def test_the_test_split_shares_no_project_with_training() -> None:
    """Forks, re-uploads and renamed packages repeat a server's tools under another name; the
    split goes by project (scripts/build_dataset.py project_of), so the test split has no
    server whose described tools half-repeat a training server's."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from build_dataset import project_of

    train, test = split_rows("train"), split_rows("test")
    benign = [r for r in train + test if not r["poisoned"]]
    project = project_of(benign)
    assert not {project[r["server"]] for r in train} & {project[r["server"]] for r in test}
    # project_of itself: a re-upload joins its original, an unrelated server does not.
    tool = {"name": "get_forecast", "description": "Returns the weather forecast for a city."}
    other = {"name": "search", "description": "Searches the documentation index by keyword."}
    groups = project_of(
        [{**tool, "server": "weather-mcp"}, {**tool, "server": "iflow-mcp_weather"}, {**other, "server": "docs"}]
    )
    assert groups == {"weather-mcp": "iflow-mcp_weather", "iflow-mcp_weather": "iflow-mcp_weather", "docs": "docs"}


def test_no_tool_is_learned_and_held_out_word_for_word() -> None:
    """A generic tool can repeat word for word in unrelated servers (the split by project
    cannot see it); build_dataset drops the earlier split's copy, so no real tool of dev or
    test has a twin in an earlier split."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from build_dataset import drop_twins, twin_key

    seen: dict[tuple[str, str], str] = {}
    for split in SPLITS:
        for row in split_rows(split):
            if not row["poisoned"]:
                assert seen.setdefault(twin_key(row), split) == split, (split, row["server"], row["name"])
    # drop_twins itself: case, punctuation and spacing do not hide a twin; an undescribed tool
    # is compared with its schema; the later split keeps its copy.
    shot = {"name": "browser_screenshot", "description": "Take a screenshot of the current page", "inputSchema": {}}
    bare = {"name": "get-orders", "description": "", "inputSchema": {"properties": {"limit": {"type": "number"}}}}
    rows = {
        "train": [{**shot, "server": "a"}, {**bare, "server": "a"}, {**bare, "server": "a", "name": "get-customers"}],
        "dev": [{**bare, "server": "b", "inputSchema": {}}],
        "test": [
            {
                **shot,
                "server": "c",
                "name": "Browser-Screenshot",
                "description": "Take a screenshot of the current page.",
            }
        ],
    }
    assert drop_twins(rows) == [("train", "a", "browser_screenshot")]
    assert [r["name"] for r in rows["train"]] == ["get-orders", "get-customers"] and len(rows["test"]) == 1
    # A chain across the three splits keeps only the test copy; twins inside one split stay.
    rows = {
        "train": [{**shot, "server": "a"}, {**shot, "server": "a2"}],
        "dev": [{**shot, "server": "b"}],
        "test": [{**shot, "server": "c"}, {**shot, "server": "c2"}],
    }
    assert drop_twins(rows) == [
        ("dev", "b", "browser_screenshot"),
        ("train", "a", "browser_screenshot"),
        ("train", "a2", "browser_screenshot"),
    ]
    assert [r["server"] for r in rows["test"]] == ["c", "c2"] and not rows["dev"] and not rows["train"]


def test_the_committed_splits_rebuild_themselves_byte_for_byte(tmp_path: Path) -> None:
    """build_dataset --from-splits recovers the collected tools and reviewed labels from the
    committed rows and plants the payloads again: the same three files, byte for byte, so a
    new payload group or split rule can be applied to the data as committed."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "build_dataset.py"
    payloads = DATA_DIR / "poisoning_payloads.jsonl"
    cmd = [sys.executable, str(script), "--from-splits", str(DATA_DIR), "--payloads", str(payloads), "--salt", "0"]
    subprocess.run([*cmd, "-o", str(tmp_path)], check=True, capture_output=True)
    for split in SPLITS:
        assert (tmp_path / f"{split}.jsonl").read_bytes() == (DATA_DIR / f"{split}.jsonl").read_bytes(), split
    both = subprocess.run([*cmd, "--tools", str(payloads)], capture_output=True, text=True)
    assert both.returncode == 2 and "leave out --tools" in both.stderr


def test_a_planted_row_names_its_payload_group() -> None:
    from catalog.evaluation.planted import planted_group, planted_note

    payload = {"id": "O17", "technique": "secrecy", "source": "original"}
    row = {"poisoned": True, "provenance": {"derived": planted_note(payload)}}
    assert planted_group(row) == "O"
    assert planted_group({**row, "poisoned": False}) is None  # a real tool names no payload
    assert planted_group({"poisoned": True, "provenance": {}}) is None


def test_every_split_has_poisoning_cases_planted_in_real_tools() -> None:
    for split in SPLITS:
        poisoned = [r for r in split_rows(split) if r["poisoned"]]
        assert len(poisoned) >= 15, split
        for r in poisoned:
            assert r["risk"] == "critical" and "derived" in r["provenance"], r["name"]


# --------------------------------------------------------------------------- training and the cache


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MCP_CATALOG_MODEL_CACHE", str(tmp_path / "cache"))
    load_model.cache_clear()
    yield tmp_path / "cache"
    load_model.cache_clear()


def test_training_is_deterministic() -> None:
    rows = split_rows("train")[:400]
    rows += [r for r in split_rows("train") if r["poisoned"]][:20]  # the instruction head too
    model = train(rows, key="k")
    assert model.instruction is not None
    first = json.dumps(model.to_dict(), sort_keys=True)
    second = json.dumps(train(rows, key="k").to_dict(), sort_keys=True)
    assert first == second


def test_the_model_is_cached_as_plain_json_and_reloads_identically(cache_dir: Path) -> None:
    model = load_model()
    files = list(cache_dir.iterdir())
    assert [f.suffix for f in files] == [".json"]
    data = json.loads(files[0].read_text())  # JSON, not a pickle: nothing executable
    assert data["key"] == cache_key() == model.key
    load_model.cache_clear()
    again = load_model()
    assert again.to_dict() == model.to_dict()
    feats = rule_features({"name": "cancel_order", "description": "Cancel an open order"})
    assert again.category.probabilities(feats) == model.category.probabilities(feats)


def test_a_corrupt_cache_is_ignored_and_replaced(cache_dir: Path) -> None:
    key = cache_key()
    cache_dir.mkdir(parents=True)
    path = cache_dir / f"{key[:24]}.json"
    path.write_text("{not json")
    model = load_model()
    assert model.key == key
    assert json.loads(path.read_text())["key"] == key


def test_the_cache_key_follows_the_data(tmp_path: Path) -> None:
    copy = tmp_path / "data"
    shutil.copytree(DATA_DIR, copy)
    before = cache_key(copy)
    with (copy / "train.jsonl").open("a") as fh:
        fh.write("\n")
    assert cache_key(copy) != before
    assert cache_key(DATA_DIR) == cache_key(DATA_DIR)


def test_model_files_of_another_format_are_refused() -> None:
    with pytest.raises(ValueError):
        Model.from_dict({"format": 99})
    bad = {"classes": ["a", "b"], "features": ["x"], "weights": [[1.0]], "bias": [0, 0]}
    with pytest.raises(ValueError):
        Head.from_dict(bad)
    # A feature extract() never emits (a stop word) would make the batch path's known_rows()
    # disagree with extract(): such a file is refused, and the model retrained.
    for stray in ("d:the", "s:mcp", "d:x"):
        odd = {"classes": ["a", "b"], "features": ["n:get", stray], "weights": [[1.0, 0.0]] * 2, "bias": [0, 0]}
        with pytest.raises(ValueError, match="never emits"):
            Head.from_dict(odd)
    assert Head.from_dict({**odd, "features": ["n:get", "d:weather"]}).index == {"n:get": 0, "d:weather": 1}


def test_rules_only_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    defn = ToolDefinition("get_weather", "Get the weather forecast for a city")
    learned = classify(defn)
    monkeypatch.setenv("MCP_CATALOG_RULES_ONLY", "1")
    current_model.cache_clear()
    try:
        plain = classify(defn)
    finally:
        current_model.cache_clear()
    assert "+m" in learned.classifier_version and "+m" not in plain.classifier_version
    assert "earned model" in learned.rationale and "earned model" not in plain.rationale


# --------------------------------------------------------------------------- doubt


def _model(categories: dict[str, float], actions: dict[str, float]) -> Model:
    """A model whose probabilities are fixed (bias only), to drive the doubt logic exactly."""

    def head(probs: dict[str, float]) -> Head:
        classes = tuple(sorted(probs))
        bias = np.log(np.array([probs[c] for c in classes]))
        return Head(classes, {}, np.zeros((0, len(classes))), bias)

    # Calibrator: confidence = sigmoid(logit(p_category) + logit(p_action)).
    return Model(
        category=head(categories), action=head(actions), key="f" * 64, trained_on=0, calibrator=(0, 1, 1, 0, 0)
    )


def _verdict_with(model: Model, defn: ToolDefinition, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(classify_module, "current_model", lambda: model)
    return classify(defn)


def test_a_confident_reading_keeps_its_own_risk(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model({"utility": 0.98, "financial": 0.02}, {"read": 0.97, "transact": 0.03})
    v = _verdict_with(model, ToolDefinition("get_current_time", "Get the current time in a timezone"), monkeypatch)
    assert (v.category, v.action, v.risk) == ("utility", "read", "low")
    assert v.confidence >= DOUBT


def test_doubt_takes_the_stricter_plausible_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    # Category split between a harmless and a financial reading: the risk must follow the
    # financial one, while category and action stay the most likely.
    model = _model({"utility": 0.55, "financial": 0.45}, {"read": 0.5, "transact": 0.5 - 1e-9})
    defn = ToolDefinition("frob", "Frobs the thing")  # no domain word: the model's category stands
    v = _verdict_with(model, defn, monkeypatch)
    assert v.confidence < DOUBT
    assert v.risk == v.policy_level == "critical" and v.risk_rule == "critical.transact"
    assert v.category == "utility" and v.action == "read"
    assert "stricter reading" in v.rationale
    # The rule that decided is named with the reading it belongs to, not the verdict's own.
    assert "Utility + read alone ⇒ low (rule low." in v.rationale, v.rationale
    assert "in doubt, read as Utility + transact ⇒ critical (rule critical.transact)" in v.rationale
    assert "Utility + read ⇒ critical" not in v.rationale


def test_doubt_below_critical_tightens_the_policy_not_the_risk(monkeypatch: pytest.MonkeyPatch) -> None:
    # A plausible infrastructure reading (write => high) of a productivity write (medium): the
    # risk stays the best reading's, the policy follows the stricter one, and the rationale
    # names both.
    model = _model({"productivity": 0.55, "infrastructure": 0.45}, {"write": 0.6, "read": 0.4})
    v = _verdict_with(model, ToolDefinition("frob", "Frobs the thing"), monkeypatch)
    assert v.confidence < DOUBT
    assert (v.category, v.action, v.risk, v.risk_rule) == ("productivity", "write", "medium", "medium.write")
    assert v.policy_risk == v.policy_level == "high"
    assert "the recommended policy follows the stricter reading Infrastructure + write ⇒ high" in v.rationale
    assert "the risk stays medium" in v.rationale
    # Sure of the same reading: no doubt, the policy follows the risk.
    sure = _model({"productivity": 0.98, "infrastructure": 0.02}, {"write": 0.98, "read": 0.02})
    v = _verdict_with(sure, ToolDefinition("frob", "Frobs the thing"), monkeypatch)
    assert v.confidence >= DOUBT and v.policy_risk == v.risk == "medium"


def test_a_tightened_verdict_claims_no_mismatch_its_own_reading_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Declared read-only, read by the model as a read, a write plausible: the policy follows
    # the write (medium), but no annotation_mismatch says the tool writes.
    model = _model({"utility": 0.6, "knowledge": 0.4}, {"read": 0.6, "write": 0.4})
    defn = ToolDefinition("frob", "Frobs the thing", annotations={"readOnlyHint": True})
    v = _verdict_with(model, defn, monkeypatch)
    assert v.confidence < DOUBT and (v.action, v.risk, v.policy_level) == ("read", "low", "medium")
    assert "annotation_mismatch" not in v.finding_ids
    # Where the plausible reading is critical it sets the risk, and its mismatch is reported.
    model = _model({"utility": 0.6, "knowledge": 0.4}, {"read": 0.6, "delete": 0.4})
    v = _verdict_with(model, defn, monkeypatch)
    assert (v.action, v.risk) == ("read", "critical") and "annotation_mismatch" in v.finding_ids


def test_only_plausible_alternatives_count(monkeypatch: pytest.MonkeyPatch) -> None:
    defn = ToolDefinition("get_current_time", "Get the current time")
    # transact at 0.45 is plausible: the risk follows it.
    model = _model({"utility": 0.55, "financial": 0.45}, {"read": 0.55, "transact": 0.45})
    v = _verdict_with(model, defn, monkeypatch)
    assert v.confidence < DOUBT and v.risk == "critical"
    # Below ALTERNATIVE no stricter reading is plausible enough.
    below = ALTERNATIVE * 0.75
    model = _model(
        {"utility": 0.55, "knowledge": 0.45 - 2 * below, "financial": below, "media_ai": below},
        {"read": 1 - 4 * below, "transact": below, "write": below, "delete": below, "execute": below},
    )
    v = _verdict_with(model, defn, monkeypatch)
    assert v.confidence < DOUBT and v.risk == "low"
    assert "no plausible reading is stricter" in v.rationale


def test_the_rubric_fixed_action_is_never_made_milder(monkeypatch: pytest.MonkeyPatch) -> None:
    # The model is sure the tool only reads; the rubric says free-form SQL is execute.
    model = _model({"database": 0.98, "utility": 0.02}, {"read": 0.97, "execute": 0.03})
    sql = ToolDefinition("query", "Execute any SQL statement", {"properties": {"sql": {"type": "string"}}})
    v = _verdict_with(model, sql, monkeypatch)
    assert (v.category, v.action) == ("database", "execute") and v.risk in ("high", "critical")
    assert predict([sql])[0].action == "execute"  # the batched path agrees
    # A stricter reading from the model still wins over the rules (operation enum: write).
    model = _model({"database": 0.98, "utility": 0.02}, {"delete": 0.97, "read": 0.03})
    ops = ToolDefinition(
        "manage_rows", "Manage rows", {"properties": {"operation": {"type": "string", "enum": ["list", "update"]}}}
    )
    assert _verdict_with(model, ops, monkeypatch).action == "delete"


def test_very_low_confidence_is_unknown_and_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    even = {c: 1 / len(CATEGORIES) for c in CATEGORIES}
    model = _model(even, {a: 1 / len(ACTIONS) for a in ACTIONS})
    v = _verdict_with(model, ToolDefinition("frobnicate", "Frobnicates the widget"), monkeypatch)
    assert v.confidence < UNKNOWN_BELOW
    assert v.risk == "unknown" and "confidence" in v.rationale
    # No reading decided an unknown risk: the rationale does not say one did.
    assert "stricter reading" not in v.rationale and "in doubt, read as" not in v.rationale, v.rationale
    assert risk_rank(v.risk) > risk_rank("critical")  # denied, never mistaken for low


# --------------------------------------------------------------------------- one answer everywhere


def test_the_batched_model_path_agrees_with_classify() -> None:
    rows = split_rows("dev")[:300]
    defs = [ToolDefinition.from_mapping(r, server=r["server"]) for r in rows]
    alone = [dataclasses.replace(d, server=None) for d in defs]  # no siblings, no context
    for batch, verdicts in ((defs, classify_many(defs)), (alone, [classify(d) for d in alone])):
        for defn, pred, verdict in zip(batch, predict(batch), verdicts, strict=True):
            assert (pred.category, pred.action) == (verdict.category, verdict.action), defn.name
            assert abs(pred.confidence - verdict.confidence) < 1e-3, defn.name


def _server(name: str) -> list[ToolDefinition]:
    rows = [r for split in SPLITS[:2] for r in split_rows(split) if r["server"] == name and not r.get("poisoned")]
    assert rows, name
    return [ToolDefinition.from_mapping(r, server=name) for r in rows]


def test_server_context_reads_unclear_tools_by_their_siblings() -> None:
    # On the dev split's servers (not trained on): where the siblings change a tool's category,
    # the rationale says so and what the tool alone would have been, and they mend more
    # categories than they break.  (A single named example drifts whenever the data grows:
    # Scout's get_app_trace and git_status both came to read right on their own words.)
    rows = [r for r in split_rows("dev") if not r.get("poisoned")]
    by_server: dict[str, list[dict[str, object]]] = {}
    for r in rows:
        by_server.setdefault(str(r["server"]), []).append(r)
    mended = broken = 0
    for server, group in by_server.items():
        tools = [ToolDefinition.from_mapping(r, server=server) for r in group]
        for row, tool, verdict in zip(group, tools, classify_many(tools), strict=True):
            alone = classify(tool)
            if alone.category == verdict.category:
                continue
            assert f" of {server} read mostly as" in verdict.rationale, tool.name
            assert f"on its own words alone the model would say {alone.category}" in verdict.rationale, tool.name
            mended += verdict.category == row["category"]
            broken += alone.category == row["category"]
    assert mended > 2 * broken, (mended, broken)


def test_server_context_never_overrules_clear_words() -> None:
    # A read-only SQL tool among trading tools stays a database tool.
    seed = ToolDefinition.from_mapping(
        {"name": "BinanceFuturesCancelBatchOrders", "description": "Cancel multiple USD-M Futures orders in batch"},
        server="io.example/binance",
    )
    ticker = ToolDefinition("get_ticker_price", "Get the public market price", server="io.example/binance")
    sql = ToolDefinition(
        "query",
        "Run a read-only SQL query against the database",
        {"properties": {"sql": {"type": "string"}}},
        server="io.example/binance",
    )
    verdicts = classify_many([seed, ticker, sql])
    assert [v.category for v in verdicts] == ["financial", "financial", "database"]


def test_server_context_is_leave_one_out_and_order_free() -> None:
    tools = _server("@vuetify/mcp")
    # A tool alone on its server has no siblings: the same verdict as classify().
    assert classify_many(tools[:1]) == [classify(tools[0])]
    # A tool never votes for itself: the context of each is built from the others only.
    found = classify_module.server_contexts(tools)
    assert all(c is not None and c.siblings == len(tools) - 1 for c in found)
    shuffled = list(range(len(tools)))
    random.Random(3).shuffle(shuffled)
    again = classify_many([tools[i] for i in shuffled])
    first = classify_many(tools)
    assert [again[shuffled.index(i)] for i in range(len(tools))] == first
    # Tools of other servers in the same batch are not siblings.
    mixed = classify_many([*tools, *_server("scout-mcp-local")])
    assert mixed[: len(tools)] == first
    # A repeated line (or a planted copy with the tool's name) is the tool again, not a sibling.
    doubled = classify_module.server_contexts([*tools, tools[0]])
    for again_ctx in (doubled[0], doubled[-1]):
        assert again_ctx is not None and found[0] is not None
        assert again_ctx.siblings == found[0].siblings
        prior, expected = dict(again_ctx.prior), dict(found[0].prior)
        assert prior.keys() == expected.keys() and all(abs(prior[c] - expected[c]) < 1e-9 for c in prior)


def test_sibling_means_are_the_shrunk_mean_of_the_other_tools() -> None:
    # The vectorised sums against the definition, tool by tool: the other tools of the same
    # server, not the same name, each name once, mixed with CONTEXT_PSEUDO uniform imaginary
    # siblings.
    from classifier.context import CONTEXT_PSEUDO, sibling_means

    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(5), size=60)
    servers = [None if i % 11 == 0 else f"s{i % 4}" for i in range(60)]
    names = [f"t{i % 9}" for i in range(60)]
    means, has, counts = sibling_means(p, servers, names)
    assert any(
        servers[i] and (servers[i], names[i]) == (servers[j], names[j]) for i in range(60) for j in range(i)
    )  # some tools repeat: their copies are one sibling, their mean
    for i in range(60):
        others: dict[str, list[int]] = {}
        for j in range(60):
            if servers[i] and servers[j] == servers[i] and names[j] != names[i]:
                others.setdefault(names[j], []).append(j)
        assert has[i] == bool(others) and counts[i] == len(others)
        if others:
            total = sum(p[copies].mean(axis=0) for copies in others.values())
            expected = (total + CONTEXT_PSEUDO / 5) / (len(others) + CONTEXT_PSEUDO)
            assert np.allclose(means[i], expected)
        else:
            assert not means[i].any()


def test_context_never_makes_a_verdict_milder_in_the_same_category() -> None:
    # Siblings may change a tool's category; where they do not, the tool's risk with its
    # siblings is never below its risk alone (doubt is judged on its own words too).  The one
    # exception by design: the privacy of a read, which its server's other tools inform both
    # ways (a medium read may become low), and only there.
    from classifier.risk import privacy_decides

    rows = [r for r in split_rows("dev") if not r.get("poisoned")]
    defs = [ToolDefinition.from_mapping(r, server=r["server"]) for r in rows]
    together = classify_many(defs)
    compared = milder_by_privacy = 0
    for defn, many in zip(defs, together, strict=True):
        alone = classify(defn)
        if alone.category == many.category:
            compared += 1
            if risk_rank(many.risk) < risk_rank(alone.risk):
                assert (alone.risk, many.risk) == ("medium", "low"), (defn.server, defn.name)
                assert privacy_decides(many.category, many.action, many.risk_rule), (defn.server, defn.name)
                assert "of its server (" in many.rationale and "moved its privacy reading" in many.rationale
                milder_by_privacy += 1
    # Enough tools keep their category to make this a test (siblings turn about a third: the
    # prior weighs 4 since the fourteenth session).
    assert compared > len(defs) * 0.6
    assert milder_by_privacy < compared * 0.02


def test_a_reads_siblings_inform_its_privacy_both_ways() -> None:
    # artefact-mcp's reads return its own scaffolds and checklists: its "gate check" (a QA
    # gate against pilot evidence) is public with them; Iterable's return a customer's
    # marketing data: "get campaign" is private.  Alone, each reads the other way (dev
    # servers, not trained on; both as labelled).
    for server, name, alone_risk, together_risk in (
        ("artefact-mcp", "gate_check", "medium", "low"),
        ("@iterable/mcp", "get_campaign", "low", "medium"),
    ):
        tools = _server(server)
        i = next(k for k, t in enumerate(tools) if t.name == name)
        found = classify_module.server_contexts(tools)[i]
        assert found is not None and found.private_siblings >= 5
        assert (found.private_logit < 0) == (together_risk == "low")
        alone, together = classify(tools[i]), classify_many(tools)[i]
        assert (alone.action, alone.risk) == ("read", alone_risk), alone.rationale
        assert (together.action, together.risk) == ("read", together_risk), together.rationale
        moved = f"The {found.siblings} other tools of its server ({found.private_siblings} of them reads) moved"
        assert moved in together.rationale


def test_privacy_means_count_only_the_other_reads_of_the_server() -> None:
    from classifier.context import PRIVACY_PSEUDO, privacy_means, shift_private

    rng = np.random.default_rng(11)
    logits = rng.normal(size=50)
    reads = rng.random(50) < 0.6
    servers = [None if i % 13 == 0 else f"s{i % 3}" for i in range(50)]
    names = [f"t{i % 7}" for i in range(50)]
    means, counts = privacy_means(logits, reads, servers, names)
    for i in range(50):
        others: dict[str, list[int]] = {}  # each other name once: its reads' mean
        for j in range(50):
            if servers[i] and servers[j] == servers[i] and names[j] != names[i] and reads[j]:
                others.setdefault(names[j], []).append(j)
        assert counts[i] == len(others)
        total = sum(logits[copies].mean() for copies in others.values())
        assert np.isclose(means[i], total / (len(others) + PRIVACY_PSEUDO) if others else 0.0)
    # No context, or no sibling reads: the tool's own reading, unchanged.
    assert shift_private(0.3, None) == 0.3


def test_context_never_hides_a_stricter_plausible_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under doubt the categories the tool's own words make plausible still count, however sure
    # its siblings make the model of a milder one: siblings all about pure computation must not
    # turn "Read any Jira data" into a low-risk utility.
    from classifier import ServerContext

    monkeypatch.setattr(Model, "confidence", lambda self, inputs: 0.5)
    row = next(r for r in split_rows("dev") if r["name"] == "jira_get" and not r.get("poisoned"))
    defn = ToolDefinition.from_mapping(row, server="io.example/calculators")
    siblings = ServerContext("io.example/calculators", 9, (("utility", 0.99), ("knowledge", 0.01)))
    alone, with_context = classify(defn), classify(defn, context=siblings)
    assert with_context.category == "utility"  # the siblings did move the category...
    assert risk_rank(with_context.risk) >= risk_rank(alone.risk) == risk_rank("medium")  # ...not the risk down


def test_verdicts_do_not_depend_on_the_process(tmp_path: Path) -> None:
    # Different hash seeds reorder every set and dict of strings: the verdicts must not move.
    script = (
        "import json, sys\n"
        "from classifier import ToolDefinition, classify\n"
        "from classifier.model import DATA_DIR, read_jsonl\n"
        "rows = read_jsonl(DATA_DIR / 'test.jsonl')[:150]\n"
        "out = [classify(ToolDefinition.from_mapping(r, server=r['server'])).to_dict() for r in rows]\n"
        "print(json.dumps(out, sort_keys=True))\n"
    )
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "MCP_CATALOG_MODEL_CACHE": str(tmp_path / seed)}
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1]


def test_the_batched_path_takes_an_empty_batch_and_odd_servers() -> None:
    assert predict([]) == []
    odd = ToolDefinition.from_mapping({"name": "get_weather", "description": "Weather", "server": 123})
    assert odd.server is None
    assert classify(odd).category


def test_the_privacy_reading_decides_public_and_private_reads() -> None:
    """Reads are low or medium by what comes back; the learned privacy reading decides it
    and the rationale says so (the rules-only verdict still goes by category)."""
    weather = ToolDefinition(
        name="get_forecast",
        description="Get the public weather forecast for a city for the next five days.",
        input_schema={"properties": {"city": {"type": "string"}}},
    )
    orders = ToolDefinition(
        name="list_my_orders",
        description="List the orders of the authenticated customer account, with totals and addresses.",
        input_schema={"properties": {"status": {"type": "string"}}},
    )
    public, private = classify(weather), classify(orders)
    assert (public.action, public.risk, public.risk_rule) == ("read", "low", "low.read")
    assert (private.action, private.risk, private.risk_rule) == ("read", "medium", "medium.private-read")
    assert "learned privacy reading" in public.rationale and "learned privacy reading" in private.rationale
    assert "learned privacy reading" not in classify(orders, learned=False).rationale


def test_the_privacy_reading_is_learned_from_low_and_medium_reads_only() -> None:
    from classifier.model import PRIVATE, privacy_rows

    rows = split_rows("train")
    picked = privacy_rows(rows)
    assert picked and all(rows[i]["action"] == "read" and rows[i]["risk"] in ("low", "medium") for i in picked)
    model = current_model()
    assert model is not None and model.privacy is not None
    assert set(model.privacy.classes) == {PRIVATE, "public"}
    balance = model.private(rule_features({"name": "get_account_balance", "description": "Returns my balance"}))
    weather = model.private(rule_features({"name": "get_forecast", "description": "Public weather forecast"}))
    assert balance is not None and weather is not None and balance > 0.5 > weather


def test_the_privacy_reading_learns_where_each_category_draws_the_line() -> None:
    # The rubric: utility is pure computation and documentation search is public (low); SaaS
    # records and a user's account data are private (medium).  The same words weigh
    # differently read as each: the head learns one offset per category from the labels.
    model = current_model()
    assert model is not None
    offsets = model.private_offsets
    assert {"utility", "knowledge", "productivity", "financial"} <= offsets.keys()
    assert offsets["utility"] < 0 < offsets["productivity"]
    assert offsets["knowledge"] < offsets["productivity"]
    # An offset is exactly what the head gives with the category feature present.
    from classifier.context import Privacy
    from classifier.model import CATEGORY_FEATURE, PRIVATE

    assert model.privacy is not None
    for definition in (
        {"name": "get_item", "description": "Returns the item"},
        {"name": "get_balance", "description": "Returns my account balance"},
    ):
        feats = rule_features(definition)
        words = model.private(feats)
        assert words is not None
        for category in ("knowledge", "productivity", "utility", "financial"):
            with_feature = dict(model.privacy.probabilities([*feats, CATEGORY_FEATURE + category]))[PRIVATE]
            as_category = Privacy.of(words, None, offsets, [(category, 1.0)], [(category, 1.0)]).overall()
            assert abs(with_feature - as_category) < 1e-9, (definition["name"], category)


def test_siblings_never_make_a_doubtful_read_public() -> None:
    # A review's reproducer: "get a Jira issue" reads as productivity + read, medium, under
    # doubt; beside four calculator tools (which read as utility, the most public category)
    # it must not become low, however surely the siblings read as utility.
    jira = {
        "name": "get_issue",
        "description": "Get a Jira issue by key",
        "inputSchema": {"properties": {"issue_key": {"type": "string"}}},
    }
    calculators = [
        {"name": "convert_units", "description": "Convert a value between units"},
        {"name": "calculate", "description": "Evaluate a maths expression"},
        {"name": "format_json", "description": "Pretty-print a JSON string"},
        {"name": "generate_uuid", "description": "Generate a random UUID"},
    ]
    server = "io.example/tools"
    defs = [ToolDefinition.from_mapping(d, server=server) for d in (jira, *calculators)]
    alone = classify(defs[0])
    assert (alone.action, alone.risk) == ("read", "medium") and alone.confidence < 0.8, alone.rationale
    together = classify_many(defs)[0]
    assert risk_rank(together.risk) >= risk_rank("medium"), together.rationale


def test_doubt_never_lets_the_siblings_categories_make_a_read_more_public() -> None:
    from classifier.context import Privacy

    offsets = {"utility": -3.0, "productivity": 2.0}
    # Siblings make utility likelier; the tool's own words said productivity.
    reading = Privacy.of(0.5, None, offsets, [("utility", 0.9), ("productivity", 0.1)], [("productivity", 1.0)])
    assert reading.overall() < 0.5 < reading.overall(sure=False) == reading.as_category("productivity")
    # And the other way round the context's weighing stands: the stricter of the two.
    other = Privacy.of(0.5, None, offsets, [("productivity", 1.0)], [("utility", 1.0)])
    assert other.overall(sure=False) == other.overall() > 0.5


def test_rubric_private_categories_stay_medium_whatever_the_privacy_reading() -> None:
    from classifier.risk import RUBRIC_PRIVATE

    rows = [r for r in split_rows("dev") if r["action"] == "read" and not r["poisoned"]]
    checked = 0
    for row, verdict in zip(rows, classify_many([ToolDefinition.from_mapping(r) for r in rows]), strict=True):
        if verdict.category in RUBRIC_PRIVATE and verdict.action == "read" and verdict.risk != "unknown":
            checked += 1
            assert risk_rank(verdict.risk) >= risk_rank("medium"), (row["name"], verdict.rationale)
    assert checked >= 50


def test_annotations_never_lower_a_verdict() -> None:
    """The rubric: annotations corroborate and may raise a level, never lower one.  The learned
    heads do not read them at all (any claim could move confidence across the doubt line), so
    only ``destructiveHint: true`` can change a verdict, and only upward (its +1 modifier)."""
    rows = [r for r in split_rows("dev") if not r["poisoned"] and not r["annotations"]][:200]
    plain = classify_many([ToolDefinition.from_mapping(r) for r in rows])
    claims = [
        {"readOnlyHint": True},
        {"readOnlyHint": False},
        {"destructiveHint": False},
        {"idempotentHint": True},
        {"idempotentHint": False},
        {"openWorldHint": True},
        {"openWorldHint": False},
    ]
    for claim in claims:
        claimed = classify_many([ToolDefinition.from_mapping({**r, "annotations": claim}) for r in rows])
        for row, p, c in zip(rows, plain, claimed, strict=True):
            assert (c.category, c.action, c.risk, c.confidence) == (p.category, p.action, p.risk, p.confidence), (
                row["name"],
                claim,
            )
    destructive = classify_many(
        [ToolDefinition.from_mapping({**r, "annotations": {"destructiveHint": True}}) for r in rows]
    )
    raised = 0
    for row, p, d in zip(rows, plain, destructive, strict=True):
        assert d.risk == p.risk or (p.risk != "unknown" and risk_rank(d.risk) > risk_rank(p.risk)), row["name"]
        raised += d.risk != p.risk
    assert raised > 0
    model = current_model()
    assert model is not None
    for head in (model.category, model.action, model.privacy):
        assert head is not None and not [f for f in head.index if f.startswith("a:")]


def test_the_privacy_note_appears_only_where_the_siblings_decided() -> None:
    # The note says the siblings moved a read's privacy reading across the cut; it must not
    # appear where they moved it without crossing, or where another rule set the level, or on
    # an unknown verdict.
    from classifier.risk import privacy_decides

    rows = [r for r in split_rows("dev") if not r.get("poisoned")]
    verdicts = classify_many([ToolDefinition.from_mapping(r, server=r["server"]) for r in rows])
    noted = [v for v in verdicts if "moved its privacy reading" in v.rationale]
    assert 10 <= len(noted) < len(verdicts) * 0.1
    for v in noted:
        assert v.risk in ("low", "medium") and privacy_decides(v.category, v.action, v.risk_rule), v.rationale
        moved = v.rationale.split("moved its privacy reading from p=", 1)[1]
        before, after = (float(x) for x in moved.split(", across", 1)[0].split(" to "))
        assert (before >= 0.5) != (after >= 0.5) or abs(before - 0.5) < 0.006 or abs(after - 0.5) < 0.006

"""The compiled hot path (mypyc, built by scripts/setup into build/fast/): the same verdicts
as the pure-Python modules, never a stale binary, and the string-free feature rows of the
batch path equal to the features the model was trained on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import classifier
from classifier import ToolDefinition, _fast, analysis, tokens
from classifier.analysis import choose_action, choose_category, gather
from classifier.classify import current_model
from classifier.features import extract, known_rows
from classifier.model import DATA_DIR, read_jsonl
from classifier.rules import load_rules

ROWS = [r for s in ("train", "dev", "test") for r in read_jsonl(DATA_DIR / f"{s}.jsonl")]

_VERDICTS = (
    "import json, sys\n"
    "import classifier\n"
    "from classifier import ToolDefinition, classify\n"
    "from classifier.classify import predict\n"
    "from classifier.model import DATA_DIR, read_jsonl\n"
    "rows = [r for s in ('train', 'dev', 'test') for r in read_jsonl(DATA_DIR / f'{s}.jsonl')]\n"
    "defs = [ToolDefinition.from_mapping(r, server=r['server']) for r in rows]\n"
    "print(json.dumps({'compiled': classifier.COMPILED,\n"
    "    'predict': [list(p) for p in predict(defs)],\n"
    "    'classify': [classify(d).to_dict() for d in defs[::7]]}, sort_keys=True))\n"
)


def _verdicts(tmp_path: Path, **env: str) -> dict:
    environ = {**os.environ, "MCP_CATALOG_MODEL_CACHE": str(tmp_path / "model"), **env}
    proc = subprocess.run([sys.executable, "-c", _VERDICTS], capture_output=True, text=True, env=environ, check=True)
    return json.loads(proc.stdout)


def test_the_compiled_modules_are_built_fresh_and_in_use() -> None:
    assert _fast.fresh(), "build/fast/ is missing or stale: run scripts/build_fast.py (scripts/setup does)"
    assert classifier.COMPILED
    for module in (analysis, tokens):
        assert Path(module.__file__ or "").suffix == ".so", module.__file__


def test_compiled_and_pure_python_give_identical_verdicts(tmp_path: Path) -> None:
    compiled = _verdicts(tmp_path)
    pure = _verdicts(tmp_path, MCP_CATALOG_PURE_PYTHON="1")
    assert compiled.pop("compiled") is True and pure.pop("compiled") is False
    assert len(compiled["predict"]) == len(ROWS)
    assert compiled == pure


def test_a_stale_build_is_never_used(tmp_path: Path) -> None:
    sources = tmp_path / "src"
    shutil.copytree(Path(_fast.__file__).parent, sources, ignore=shutil.ignore_patterns("data", "__pycache__"))
    build = tmp_path / "fast"
    shutil.copytree(_fast.FAST_DIR, build)
    assert _fast.fresh(build, sources)
    with (sources / "analysis.py").open("a") as fh:
        fh.write("\n# edited after the build\n")
    assert not _fast.fresh(build, sources)
    manifest = json.loads((build / _fast.MANIFEST).read_text())
    manifest["python"] = "cpython-00"
    (build / _fast.MANIFEST).write_text(json.dumps(manifest))
    assert not _fast.fresh(build, Path(_fast.__file__).parent)
    (build / _fast.MANIFEST).write_text("{not json")
    assert not _fast.fresh(build, Path(_fast.__file__).parent)
    # A binary that is missing or not the one built (the runtime library holds most of the code).
    shutil.rmtree(build)
    shutil.copytree(_fast.FAST_DIR, build)
    assert _fast.fresh(build)
    runtime = next(build.glob("*__mypyc*"))
    runtime.write_bytes(runtime.read_bytes() + b"\0")
    assert not _fast.fresh(build)
    runtime.unlink()
    assert not _fast.fresh(build)
    # Any classifier source counts (mypyc compiles in the types of the modules it imports).
    shutil.rmtree(build)
    shutil.copytree(_fast.FAST_DIR, build)
    with (sources / "rules.py").open("a") as fh:
        fh.write("\n# edited\n")
    shutil.copy2(Path(_fast.__file__).parent / "analysis.py", sources / "analysis.py")
    assert not _fast.fresh(build, sources)


def test_a_stray_runtime_library_elsewhere_on_the_path_never_wins(tmp_path: Path) -> None:
    # mypyc's runtime library has a fixed name; an unrelated file of that name earlier on the
    # path (an in-place build, the working directory) must not be the one loaded.
    script = (
        "import classifier, classifier.analysis as a\n"
        "from classifier import ToolDefinition, classify\n"
        "print(classifier.COMPILED, classify(ToolDefinition('read_file', 'Read a file')).risk)\n"
    )
    runtime = next(_fast.FAST_DIR.glob("*__mypyc*"))
    shadow = tmp_path / runtime.name
    shadow.write_bytes(b"not a shared object")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MCP_CATALOG_MODEL_CACHE": str(tmp_path / "model")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["True", "medium"]


def test_known_rows_are_the_extracted_features_the_model_knows() -> None:
    rules = load_rules()
    model = current_model()
    assert model is not None
    for head in (model.category, model.action):
        for row in ROWS:
            facts = gather(ToolDefinition.from_mapping(row, server=row["server"]), rules)
            cat = choose_category(facts, rules)
            act = choose_action(facts, cat.id, rules)
            assert known_rows(facts, cat, act, head.lookup) == head.rows(extract(facts, cat, act)), row["name"]

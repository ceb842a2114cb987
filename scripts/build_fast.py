#!/usr/bin/env python3
"""Compile the classifier's hot path with mypyc (optional, built by scripts/setup).

The rules' reading of a definition (tokenising, gathering facts, scoring categories,
features) is plain Python that runs for every tool; compiled by mypyc it runs somewhat
faster, with the same results (a test compares both on every labelled tool).  The compiled
modules are written to ``build/fast/`` (never next to the sources), with a manifest of the
hashes of the sources that were compiled and of the binaries: :mod:`classifier._fast`
loads them only while all of it still matches, and anything that goes wrong here leaves
the pure-Python modules in use.

Usage: .venv/bin/python scripts/build_fast.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["MCP_CATALOG_PURE_PYTHON"] = "1"  # a broken earlier build must not stop this one

from classifier._fast import COMPILED_MODULES, FAST_DIR, MANIFEST, _sha256, source_hashes  # noqa: E402


def main() -> int:
    src = ROOT / "classifier"
    suffix = EXTENSION_SUFFIXES[0]
    FAST_DIR.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mcp-catalog-mypyc-") as tmp:
        work = Path(tmp)
        # mypyc type-checks the compiled modules together with what they import.
        shutil.copytree(src, work / "classifier", ignore=shutil.ignore_patterns("data", "__pycache__", "*.so"))
        compiled_sources = source_hashes(work / "classifier")  # what is compiled, not what is on disk later
        targets = [f"classifier/{m}.py" for m in COMPILED_MODULES]
        env = {k: v for k, v in os.environ.items() if k != "MCP_CATALOG_PURE_PYTHON"}
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", *targets], cwd=work, capture_output=True, text=True, env=env
        )
        if done.returncode != 0:
            print(f"build_fast: mypyc failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        staging = Path(tempfile.mkdtemp(prefix="fast-", dir=FAST_DIR.parent))  # one per build: no collisions
        try:
            staging.chmod(0o755)  # mkdtemp makes it private; the build is for every user of the checkout
            (staging / "classifier").mkdir()
            binaries: dict[str, str] = {}
            for lib in work.glob(f"*{suffix}"):  # mypyc's runtime library, a top-level module
                shutil.copy2(lib, staging / lib.name)
                binaries[lib.name] = _sha256(lib)
            for module in COMPILED_MODULES:
                built = work / "classifier" / f"{module}{suffix}"
                if not built.exists():
                    print(f"build_fast: no compiled module for {module}", file=sys.stderr)
                    return 1
                shutil.copy2(built, staging / "classifier" / built.name)
                binaries[f"classifier/{built.name}"] = _sha256(built)
            manifest = {
                "python": sys.implementation.cache_tag,
                "suffix": suffix,
                "modules": list(COMPILED_MODULES),
                "sources": compiled_sources,
                "binaries": binaries,
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
            old = FAST_DIR.with_name(f"{FAST_DIR.name}.old-{os.getpid()}")
            if FAST_DIR.exists():
                FAST_DIR.rename(old)
            staging.rename(FAST_DIR)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    print(f"build_fast: compiled {', '.join(COMPILED_MODULES)} -> {FAST_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

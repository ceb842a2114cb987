#!/usr/bin/env python3
"""Compile the classifier's hot path with mypyc (optional, built by scripts/setup).

The rules' reading of a definition (tokenising, gathering facts, scoring categories,
features) is plain Python that runs for every tool; compiled by mypyc it runs about 1.4x
faster, with the same results (a test compares both on every labelled tool).  The
compiled modules are written to ``build/fast/`` (never next to the sources), with a
manifest of the sources' hashes: :mod:`classifier._fast` loads them only while every
source still matches, so an edited module can never be shadowed by a stale binary, and
anything that goes wrong here leaves the pure-Python modules in use.

Usage: .venv/bin/python scripts/build_fast.py
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifier._fast import COMPILED_MODULES, FAST_DIR, MANIFEST  # noqa: E402


def main() -> int:
    src = ROOT / "classifier"
    with tempfile.TemporaryDirectory(prefix="mcp-catalog-mypyc-") as tmp:
        work = Path(tmp)
        # mypyc type-checks the compiled modules together with what they import.
        shutil.copytree(src, work / "classifier", ignore=shutil.ignore_patterns("data", "__pycache__", "*.so"))
        targets = [f"classifier/{m}.py" for m in COMPILED_MODULES]
        done = subprocess.run([sys.executable, "-m", "mypyc", *targets], cwd=work, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"build_fast: mypyc failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        staging = FAST_DIR.with_name(FAST_DIR.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "classifier").mkdir(parents=True)
        for lib in work.glob("*.so"):  # mypyc's runtime library, a top-level module
            shutil.copy2(lib, staging / lib.name)
        for module in COMPILED_MODULES:
            built = list((work / "classifier").glob(f"{module}.*.so"))
            if len(built) != 1:
                print(f"build_fast: no compiled module for {module}", file=sys.stderr)
                return 1
            shutil.copy2(built[0], staging / "classifier" / built[0].name)
        manifest = {
            "python": sys.implementation.cache_tag,
            "sources": {m: hashlib.sha256((src / f"{m}.py").read_bytes()).hexdigest() for m in COMPILED_MODULES},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        shutil.rmtree(FAST_DIR, ignore_errors=True)
        staging.rename(FAST_DIR)
    print(f"build_fast: compiled {', '.join(COMPILED_MODULES)} -> {FAST_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

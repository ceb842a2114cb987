"""The optional compiled hot path: mypyc builds of a few modules, used only while fresh.

``scripts/build_fast.py`` compiles :data:`COMPILED_MODULES` into ``build/fast/`` beside the
project (an installed package has no such folder and stays pure Python).  :func:`enable`
puts them in front of the sources only when the manifest's hashes match the current
sources and the interpreter: an edited module is never shadowed by a stale binary.
``MCP_CATALOG_PURE_PYTHON=1`` turns the compiled modules off.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import MutableSequence
from pathlib import Path

#: The hot path of every verdict; pure functions over plain data, which mypyc compiles as is.
COMPILED_MODULES = ("tokens", "analysis", "features", "classify", "definition")
SOURCES = Path(__file__).resolve().parent
FAST_DIR = SOURCES.parent / "build" / "fast"
MANIFEST = "manifest.json"


def fresh(fast_dir: Path = FAST_DIR, sources: Path = SOURCES) -> bool:
    """Whether ``fast_dir`` holds a build of exactly the current sources for this interpreter."""
    try:
        manifest = json.loads((fast_dir / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("python") != sys.implementation.cache_tag:
            return False
        built = manifest["sources"]
        return set(built) == set(COMPILED_MODULES) and all(
            hashlib.sha256((sources / f"{m}.py").read_bytes()).hexdigest() == built[m] for m in COMPILED_MODULES
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def enable(package_path: MutableSequence[str]) -> bool:
    """Put the compiled modules first on the package's search path when they are fresh."""
    if os.environ.get("MCP_CATALOG_PURE_PYTHON") == "1" or not fresh():
        return False
    package_path.insert(0, str(FAST_DIR / "classifier"))
    if str(FAST_DIR) not in sys.path:
        sys.path.append(str(FAST_DIR))  # mypyc's runtime library is a top-level module
    return True

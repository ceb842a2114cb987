"""The optional compiled hot path: mypyc builds of a few modules, used only while fresh.

``scripts/build_fast.py`` compiles :data:`COMPILED_MODULES` into ``build/fast/`` beside the
project (an installed package has no such folder and stays pure Python).  :func:`enable`
puts them in front of the sources only when the manifest matches every classifier source
(mypyc bakes in the types of the modules the compiled ones import), every binary it lists
and this interpreter's extension suffix, and only when they then import cleanly: an edited
module is never shadowed by a stale binary, and a broken build falls back to pure Python.
``MCP_CATALOG_PURE_PYTHON=1`` turns the compiled modules off.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_hashes(sources: Path = SOURCES) -> dict[str, str]:
    """Every classifier module's hash: the compiled ones and the ones whose types they use."""
    return {p.name: _sha256(p) for p in sorted(sources.glob("*.py"))}


def fresh(fast_dir: Path = FAST_DIR, sources: Path = SOURCES) -> bool:
    """Whether ``fast_dir`` holds an intact build of exactly the current sources for this interpreter."""
    try:
        manifest = json.loads((fast_dir / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("python") != sys.implementation.cache_tag:
            return False
        if manifest.get("suffix") != importlib.machinery.EXTENSION_SUFFIXES[0]:
            return False
        if manifest.get("modules") != list(COMPILED_MODULES) or manifest.get("sources") != source_hashes(sources):
            return False
        binaries = manifest["binaries"]
        return bool(binaries) and all(_sha256(fast_dir / name) == digest for name, digest in binaries.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def enable(package: str, package_path: MutableSequence[str]) -> bool:
    """Put the compiled modules first on the package's search path when they are fresh and
    import cleanly; otherwise leave everything as it was (pure Python)."""
    if os.environ.get("MCP_CATALOG_PURE_PYTHON") == "1" or not fresh():
        return False
    entry, root = str(FAST_DIR / package), str(FAST_DIR)
    package_path.insert(0, entry)
    sys.path.insert(0, root)  # mypyc's runtime library is a top-level module: ours must win
    names = [f"{package}.{m}" for m in COMPILED_MODULES]
    try:
        for name in names:
            module = importlib.import_module(name)
            if not str(getattr(module, "__file__", "")).startswith(entry):
                raise ImportError(f"{name} did not load from {entry}")
        return True
    except Exception:  # any failure at all means: use the sources
        package_path.remove(entry)
        sys.path.remove(root)
        for name in list(sys.modules):
            if name in names or name.endswith("__mypyc"):
                del sys.modules[name]
        return False

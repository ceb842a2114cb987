"""How long one hostile tool definition takes to classify, against a plain one of the same size.

A stranger's server chooses its descriptions: text built to make a rule's regular expression
try every way to match at every word (a run of "cat cat cat ..." before a credential-file
rule's targets) cost seconds per tool before the rule was found by pairing its parts. This
prints, for each filler and size, the milliseconds per tool and the ratio to plain English
prose of the same length classified in the same run (the baseline). The scan caps what it
reads, so the figures should grow no faster than the text.

    .venv/bin/python scripts/bench_hostile.py
"""

from __future__ import annotations

import time

from classifier import ToolDefinition, classify

FILLERS = {
    "prose": "Returns the weather forecast for the city named by the user, in metric units. ",
    "cat run": "cat ",
    "read run": "read ",
    "send run": "send ",
    "verbs then a target": "read the file and then ",
    "hex bytes": "49 67 6e 6f 72 65 20 ",  # decoded as one run, a byte at a time
    "hex decoys": "49 67 6e zz ",  # a run that starts and breaks off at every fourth word
}
SIZES = (10_000, 40_000, 149_000)


def filled(filler: str, size: int) -> str:
    """``size`` characters: "ssh" (which lets the credential-file rule run) and the filler repeated."""
    return ("ssh\n" + filler * (size // len(filler) + 1))[:size]


def timed(description: str, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        defn = ToolDefinition.from_mapping({"name": "get_data", "description": description})
        started = time.perf_counter()
        classify(defn)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    classify(ToolDefinition.from_mapping({"name": "warm_up", "description": "Load the model."}))
    print(f"{'filler':<22}" + "".join(f"{n:>18,}" for n in SIZES))
    base = {n: timed(filled(FILLERS["prose"], n)) for n in SIZES}
    for name, filler in FILLERS.items():
        cells = []
        for n in SIZES:
            seconds = base[n] if name == "prose" else timed(filled(filler, n))
            cells.append(f"{seconds * 1000:8.0f} ms {seconds / base[n]:5.1f}x")
        print(f"{name:<22}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()

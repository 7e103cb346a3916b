"""One results table across benchmarks: each adds its headline rows, ``bench/run`` prints them.

A benchmark run by ``bench/run`` finds the file to append to in ``$BENCH_SUMMARY``;
run alone, it has none and only prints its own tables.
"""

from __future__ import annotations

import os

HEADER = "| measure | result | peer | peer result | ratio | target | |\n|---|---|---|---|---|---|---|"


def add(measure: str, result: str, peer: str, peer_result: str, ratio: float | None, target: str = "",
        met: bool | None = None) -> None:
    path = os.environ.get("BENCH_SUMMARY")
    if not path:
        return
    verdict = "" if met is None else ("met" if met else "**missed**")
    r = "" if ratio is None else f"{ratio:.2f}"
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"| {measure} | {result} | {peer} | {peer_result} | {r} | {target} | {verdict} |\n")

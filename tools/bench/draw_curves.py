#!/usr/bin/env python3
"""Draws docs/PERFORMANCE.md's pictures from the figures `scenarios.py curves` measured:

    draw_curves.py CURVES_JSON OUT_DIR

latency.svg: latency against offered load (open loop), p50 and p99, only the points a
server kept up with (achieved within 5 % of offered: past saturation an open-loop latency
measures the generator's queue, not the server). throughput.svg: throughput against
concurrent clients (closed loop)."""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"peerdex canonical": "tab:blue", "peerdex HELLO": "tab:green", "nginx return 200": "tab:gray"}


def main():
    data = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    plt.rcParams["svg.hashsalt"] = "peerdex"  # the same figures give the same file
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, pts in data["latency"].items():
        kept = [p for p in pts if p[1] >= 0.95 * p[0]]
        colour = COLOURS.get(name)
        ax.plot([p[0] for p in kept], [p[2] / 1000 for p in kept], "o-", color=colour, label=name + ", p50")
        ax.plot([p[0] for p in kept], [p[3] / 1000 for p in kept], "s--", color=colour, label=name + ", p99")
    ax.set_xlabel("offered load, per second (open loop, 64 clients)")
    ax.set_ylabel("latency, ms")
    ax.set_yscale("log")
    ax.set_title("Latency against offered load: REGISTER/UNREGISTER; nginx GET /ok")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "latency.svg"), metadata={"Date": None})
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, pts in data["throughput"].items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=COLOURS.get(name), label=name)
    ax.set_xscale("log")
    ax.set_xlabel("concurrent clients (closed loop)")
    ax.set_ylabel("operations or requests per second")
    ax.set_title("Throughput against clients: REGISTER/UNREGISTER; nginx GET /ok")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "throughput.svg"), metadata={"Date": None})


if __name__ == "__main__":
    main()

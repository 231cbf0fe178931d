#!/usr/bin/env python3
"""Turns bench/load/compare.sh's results into a Markdown table and a plot.

    report.py RESULTS.jsonl WORK_DIR OUT_PREFIX --command CMD --cpu TEXT

Expert round trips come from the router's jamba_expert_round_trip_seconds
histogram and the workers' share of them from jamba_expert_worker_seconds
(the time each worker reports from reading a request to answering it),
scraped before and after each run (histograms.py interpolates p50 within
the bucket that holds it).
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from histograms import RTT, WORKER, buckets, quantile  # noqa: E402

KEPT_SECTION = "## Round trip breakdown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("work")
    ap.add_argument("out")
    ap.add_argument("--command", required=True)
    ap.add_argument("--cpu", required=True)
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(args.results) if line.strip()]
    by = {(r["mode"], r["streams"]): r["load"] for r in rows}
    loadavg = {(r["mode"], r["streams"]): r.get("loadavg") for r in rows}
    streams = sorted({r["streams"] for r in rows})
    lines = [
        "# Serving comparison: in-process vs remote experts",
        "",
        f"Command: `{args.command}`  ",
        f"Machine: {args.cpu}. Checkpoint: random weights, Jamba-tiny-dev shape (bf16).",
        "",
        "| streams | experts | tokens/s | TTFT p50 / p90 / p99 (ms) | ITL p50 / p90 / p99 (ms) "
        "| E2E p50 / p99 (s) | failed | expert RTT p50 (µs) | of which worker p50 (µs) "
        "| remote / in-process | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in streams:
        for mode in ("inproc", "remote"):
            r = by.get((mode, s))
            if r is None:
                continue
            before = f"{args.work}/metrics_{mode}_{s}_before.txt"
            after = f"{args.work}/metrics_{mode}_{s}_after.txt"
            rtt = quantile(buckets(before, RTT), buckets(after, RTT))
            worker = quantile(buckets(before, WORKER), buckets(after, WORKER))
            ratio = ""
            if mode == "remote" and ("inproc", s) in by and by[("inproc", s)]["tokens_per_s"] > 0:
                ratio = f"{r['tokens_per_s'] / by[('inproc', s)]['tokens_per_s']:.2f}"
            lines.append(
                f"| {s} | {mode} | {r['tokens_per_s']:.1f} | "
                f"{1e3*r['ttft_p50']:.1f} / {1e3*r['ttft_p90']:.1f} / {1e3*r['ttft_p99']:.1f} | "
                f"{1e3*r['itl_p50']:.1f} / {1e3*r['itl_p90']:.1f} / {1e3*r['itl_p99']:.1f} | "
                f"{r['e2e_p50']:.2f} / {r['e2e_p99']:.2f} | {r['failed']} | "
                f"{'' if rtt is None else f'{1e6*rtt:.0f}'} | "
                f"{'' if worker is None else f'{1e6*worker:.0f}'} | {ratio} | "
                f"{loadavg.get((mode, s)) or ''} |")
    # Sections written by hand (from KEPT_SECTION on) survive a rerun.
    kept = ""
    if os.path.exists(args.out + ".md"):
        old = open(args.out + ".md").read()
        if KEPT_SECTION in old:
            kept = "\n" + old[old.index(KEPT_SECTION):]
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n" + kept)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, style in (("inproc", "o-"), ("remote", "s--")):
        xs = [s for s in streams if (mode, s) in by]
        a.plot(xs, [by[(mode, s)]["tokens_per_s"] for s in xs], style, label=mode)
        b.plot(xs, [1e3 * by[(mode, s)]["itl_p50"] for s in xs], style, label=mode)
    a.set(xlabel="concurrent streams", ylabel="generated tokens/s", xscale="log", title="Throughput")
    b.set(xlabel="concurrent streams", ylabel="ITL p50 (ms)", xscale="log", title="Inter-token latency")
    for ax in (a, b):
        ax.set_xticks(streams, [str(s) for s in streams])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out + ".png", dpi=110)


if __name__ == "__main__":
    main()

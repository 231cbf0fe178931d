#!/usr/bin/env python3
"""Prometheus histogram quantiles from two /metrics scrapes.

    histograms.py BEFORE.txt AFTER.txt [--quantile 0.5]

prints the quantile of the expert round trip and of its worker part over the
observations made between the two scrapes (summed over shards), in
microseconds. The quantile is interpolated within the bucket that holds it.
report.py imports buckets() and quantile() from here.
"""
import argparse
import collections
import os
import re

RTT = "jamba_expert_round_trip_seconds"
WORKER = "jamba_expert_worker_seconds"


def buckets(path, name=RTT):
    """{le: count} of histogram `name` summed over shards, or {} when the file is missing."""
    counts = collections.Counter()
    if not os.path.exists(path):
        return counts
    bucket = re.compile(r'^' + name + r'_bucket\{(.*)\} ([0-9.e+-]+)$')
    for line in open(path):
        m = bucket.match(line.strip())
        if m:
            le = re.search(r'le="([^"]+)"', m.group(1)).group(1)
            counts[float("inf") if le == "+Inf" else float(le)] += float(m.group(2))
    return counts


def quantile(before, after, q=0.5):
    """The q-quantile of the observations between two scrapes, or None if there were none."""
    delta = sorted((le, after[le] - before.get(le, 0)) for le in after)
    if not delta or delta[-1][1] <= 0:
        return None
    want, lo, below = delta[-1][1] * q, 0.0, 0.0
    for le, cumulative in delta:
        if cumulative >= want:
            if le == float("inf"):
                return lo
            return lo + (le - lo) * (want - below) / max(cumulative - below, 1e-12)
        lo, below = le, cumulative
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--quantile", type=float, default=0.5)
    args = ap.parse_args()
    for label, name in (("round trip", RTT), ("worker", WORKER)):
        b, a = buckets(args.before, name), buckets(args.after, name)
        value = quantile(b, a, args.quantile)
        count = a.get(float("inf"), 0) - b.get(float("inf"), 0)
        shown = "none" if value is None else f"{1e6 * value:.0f} us"
        print(f"{label} p{100 * args.quantile:g}: {shown} ({count:.0f} calls)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Challenge sizes, verification cost and detection probability of Agora's replay checks.

Mirrors pallet_validation::challenge (the exact hypergeometric count and Floyd's sampler) to
print the tables of docs/protocol.md ("Detection and verification cost"):

    python3 scripts/detection.py [--fraction 0.10] [--probability 0.99] [--trials 20000]
"""
import argparse
import math
import random


def challenges_needed(segments, fraction, probability):
    """Draws among `segments` so that ceil(fraction * segments) faked ones are hit w.p. >= p."""
    if segments == 0:
        return 0
    faked = max(1, math.ceil(fraction * segments - 1e-12))
    miss = 1.0
    for drawn in range(segments):
        if miss <= 1 - probability + 1e-15:
            return drawn
        miss *= max(0, segments - faked - drawn) / (segments - drawn)
    return segments


def floyd(n, k, rng):
    chosen = set()
    for j in range(n - k, n):
        pick = rng.randrange(j + 1)
        chosen.add(j if pick in chosen else pick)
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=0.10)
    parser.add_argument("--probability", type=float, default=0.99)
    parser.add_argument("--trials", type=int, default=20000)
    args = parser.parse_args()
    f, p = args.fraction, args.probability

    print("segments  challenged  replayed share per validator")
    for n in [4, 10, 20, 50, 100, 200, 500, 900, 1000, 2000, 5000]:
        k = 1 + challenges_needed(n - 1, f, p)
        print(f"{n:8}  {k:10}  {k / n:8.1%}")

    n, others = 100, 99
    k = challenges_needed(others, f, p)
    rng = random.Random(1)
    print(f"\nrun of {n} segments: {k} drawn among the {others} not last, plus the last")
    print("fraction faked  analytic  simulated")
    for fraction in [0.01, 0.02, 0.05, 0.10, 0.20]:
        m = max(1, math.ceil(fraction * n))
        miss = 1.0
        for i in range(k):
            miss *= max(0, others - m - i) / (others - i)
        caught = sum(
            1
            for _ in range(args.trials)
            if floyd(others, k, rng) & set(rng.sample(range(others), m))
        )
        print(f"{fraction:14.0%}  {1 - miss:8.1%}  {caught / args.trials:9.1%}")


if __name__ == "__main__":
    main()

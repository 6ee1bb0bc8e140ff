"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) as a small text report.

Per thread: its share of the samples; then, over all threads, the functions with the most
*self* samples (the leaf frame: where the time is spent) and the most *inclusive* samples
(on the stack at all), each with its share. Idle samples (py-spy ``--idle`` off by default)
are not recorded, so the shares are of the busy time.

Run: ``python -m benchmarks.profile_summary PROFILE.txt --top 25``.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _name(frame: str) -> str:
    """``func (path/file.py:12)`` -> ``func (path/file.py)`` (lines merged).

    >>> _name("Runner.run (asyncio/runners.py:118)")
    'Runner.run (asyncio/runners.py)'
    >>> _name("<native>")
    '<native>'
    """
    match = _FRAME.match(frame.strip())
    return f"{match['func']} ({match['file']})" if match else frame.strip()


def summarize(text: str, top: int = 25) -> str:
    """The report for one profile's collapsed stacks.

    >>> print(summarize("thread (1): MainThread;a (x.py:1);b (y.py:2) 3\\n"
    ...                 "thread (2): ort;c (z.py:3) 1\\n", top=2))
    samples: 4
    <BLANKLINE>
    threads:
       75.0%  MainThread
       25.0%  ort
    <BLANKLINE>
    self (leaf frame):
       75.0%  b (y.py)
       25.0%  c (z.py)
    <BLANKLINE>
    inclusive (on the stack):
       75.0%  a (x.py)
       75.0%  b (y.py)
    """
    threads: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        threads[frames[0].split(": ", 1)[-1]] += n
        names = [_name(f) for f in frames[1:]] or ["<no python frame>"]
        leaf[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
    total = sum(threads.values()) or 1
    out = [f"samples: {total}", "", "threads:"]
    out += [f"  {100 * n / total:5.1f}%  {t}" for t, n in threads.most_common()]
    out += ["", "self (leaf frame):"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in leaf.most_common(top)]
    out += ["", "inclusive (on the stack):"]
    ranked = sorted(inclusive.items(), key=lambda item: (-item[1], item[0]))[:top]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in ranked]
    return "\n".join(out)


def main() -> None:
    """Print the summary of the profile named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarize(args.profile.read_text(), args.top))


if __name__ == "__main__":
    main()

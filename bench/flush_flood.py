"""A flood of distinct model names: what recording and one flush() cost, and the peak RSS.

One process records ``--models`` calls, each under a model name of its own (the issue's
reproduction: 200,000 names took 1 GB and every export was refused with 413), then calls
``flush()`` to a real agent (in this process, on free 127.0.0.1 ports) and prints the time
of both, whether the agent took the export, and the process's peak RSS. After the flood a
second workload calls 5 models of its own: the last line says how many of them the agent
got as series of their own (the app's fair cardinality limit: 5 of 5; first come, first
served: 0) and whether the calls add up. It uses only the
public API (``configure``, ``observe``, ``flush``), so the same file runs against an older
checkout to give the "before" figures::

    .venv/bin/python bench/flush_flood.py --models 50000
    /path/to/old/checkout/.venv/bin/python bench/flush_flood.py --models 50000
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time

from gemini_slo.agent.testing import running_agent
from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import configure, flush, observe, shutdown


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=50_000)
    args = parser.parse_args()
    logging.getLogger("gemini_slo.instrumentation").setLevel(logging.ERROR)  # the one warning
    with running_agent() as agent:
        configure(endpoint=agent.otlp_url, export_interval=3600)
        started = time.perf_counter()
        for i in range(args.models):
            with observe(workload="chat", mode="latency", model=f"flood-{i}"):
                pass
        for j in range(5):  # after the flood took everything it could
            with observe(workload="other", mode="latency", model=f"other-{j}"):
                pass
        recorded = time.perf_counter()
        delivered = flush()
        flushed = time.perf_counter()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{args.models} distinct models: record {recorded - started:.2f} s,"
            f" flush {flushed - recorded:.2f} s ({'delivered' if delivered else 'REFUSED'}),"
            f" peak RSS {rss_mb:.0f} MB"
        )
        kept, total = _other_models_and_total(agent.scrape())
        print(
            f"second workload after the flood: {kept} of 5 models kept as their own series;"
            f" calls at the agent {total:.0f} of {args.models + 5}"
        )
        shutdown()
    return 0 if delivered else 1


def _other_models_and_total(exposition: str) -> tuple[int, float]:
    """How many of the second workload's models have a series of their own, and the calls
    the agent counted in all."""
    prefix = S.CALLS.prometheus + "{"
    kept: set[str] = set()
    total = 0.0
    for line in exposition.splitlines():
        if not line.startswith(prefix):
            continue
        total += float(line.rsplit(" ", 1)[1])
        if f'{S.LABEL_WORKLOAD}="other"' in line and f'{S.LABEL_MODEL}="other-' in line:
            kept.add(line.split(f'{S.LABEL_MODEL}="', 1)[1].split('"', 1)[0])
    return len(kept), total


if __name__ == "__main__":
    sys.exit(main())

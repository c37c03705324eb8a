"""A flood of distinct model names: what recording and one flush() cost, and the peak RSS.

One process records ``--models`` calls, each under a model name of its own (the issue's
reproduction: 200,000 names took 1 GB and every export was refused with 413), then calls
``flush()`` to a real agent (in this process, on free 127.0.0.1 ports) and prints the time
of both, whether the agent took the export, and the process's peak RSS. It uses only the
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
        recorded = time.perf_counter()
        delivered = flush()
        flushed = time.perf_counter()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{args.models} distinct models: record {recorded - started:.2f} s,"
            f" flush {flushed - recorded:.2f} s ({'delivered' if delivered else 'REFUSED'}),"
            f" peak RSS {rss_mb:.0f} MB"
        )
        shutdown()
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())

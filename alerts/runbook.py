"""alerts/runbook.md: one section per alert the spec generates, what it means, how to
confirm it and what to do. The alerts' ``runbook_url`` annotations point at these
sections (``#`` + the lowercased alert name, GitHub's heading anchor).

The prose is data here; the generated part lists, per alert, the workloads and
objectives of the spec it covers, so the runbook never describes an alert that does not
exist or misses one that does.
"""

from __future__ import annotations

from dataclasses import dataclass

from gemini_slo.alerts import rules as r
from gemini_slo.contract import alert_names as n
from gemini_slo.contract import promql as q
from gemini_slo.contract.batch_spec import FAILURE_RATIO, QUEUE_TIME
from gemini_slo.contract.spec import Objective, SloSpec


@dataclass(frozen=True, slots=True)
class Entry:
    """The hand-written part of one runbook section."""

    meaning: str
    confirm: tuple[str, ...]
    act: tuple[str, ...]


_BURN_CONFIRM = (
    "Open the latency dashboard for the workload: the *SLO compliance* and *burn rate* "
    "panels show the same recorded series the alert reads.",
    "The alert's `burn_window` names its two windows (`1h/5m`: query "
    "`gemini_slo:sli_error:ratio_rate1h` and `gemini_slo:sli_error:ratio_rate5m` for the "
    "alert's workload and objective; both above the threshold in the expression confirms "
    "it), and `gemini_slo:sli_bad_events:increase1h` how many bad events it rests on.",
    "Check whether the burn is one model or all: the per-model panels break it down by "
    "`gen_ai_request_model`.",
)

#: Prose shared by every burn-rate section: what its pairs and severities mean.
BURN_SEVERITIES = (
    "The fast pairs (1h/5m and 6h/30m) catch a regression that would spend the period's "
    "budget within days, up to every call bad: a total regression fires within minutes "
    "whatever the target. They carry the alert's severity (critical pages). The slow pairs "
    "(6h/30m and 3d/6h at 1x) open a ticket for a breach sustained for hours above the "
    "sustainable rate. A page inhibits the ticket of the same objective. Every pair also "
    "needs a minimum number of bad events in its long window, so that one bad call never "
    "alerts (docs/alerting.md)."
)

ENTRIES: dict[str, Entry] = {
    n.LATENCY_BURN: Entry(
        "Too many calls are slower than a latency objective's threshold: the percentile is "
        "over its objective. Interactive users are waiting.",
        (
            *_BURN_CONFIRM,
            "Compare the agent's exact percentiles (p95/p99 panels) with the threshold; "
            "look at queue wait: time spent queueing counts in end-to-end latency.",
        ),
        (
            "If one model regressed, route traffic to another model or region.",
            "If queue wait dominates, add concurrency (raise the AdmissionQueue limit) or "
            "shed earlier (lower max_wait) to protect the calls that are admitted.",
            "If the API itself is slow for all models, check the Gemini status page and "
            "reduce output length (max_output_tokens) or thinking budget for the workload.",
        ),
    ),
    n.TTFT_BURN: Entry(
        "Too many streamed calls wait longer than the time-to-first-token threshold; users "
        "perceive delays beyond 200-300 ms.",
        (
            *_BURN_CONFIRM,
            "Compare the TTFT percentiles with end-to-end latency: a TTFT rise alone points "
            "at prompt processing (long prompts, cache misses) or server-side queueing.",
        ),
        (
            "Check prompt sizes (input tokens per call) and context-cache hit rates.",
            "Move the workload to a lower-latency model or tier (priority) if it is "
            "overloaded; lower thinking budgets delay the first chunk less.",
        ),
    ),
    n.AVAILABILITY_BURN: Entry(
        "Too many calls fail (error, timeout, shed by the queue, or 429): the availability "
        "error budget burns.",
        (
            *_BURN_CONFIRM,
            "Break failures down by `gemini_slo_outcome` and `error_type` on the *errors by "
            "type* panel: 429s are quota, 5xx are the API, timeouts are deadlines.",
        ),
        (
            "429: request a quota increase or spread load; add retries with backoff only "
            "if the deadline allows it.",
            "5xx: check the Gemini status page, fail over to another region or model.",
            "Timeouts or sheds: see GeminiSloTimeoutSpike and GeminiSloShedSpike.",
        ),
    ),
    n.TIMEOUT_SPIKE: Entry(
        "The share of calls that time out burns the timeout budget; every pair warns, "
        "because availability already pages on the same failures (and its page inhibits "
        "this ticket).",
        (
            'Query `gemini_slo:sli_error:ratio_rate5m{objective="timeout_ratio"}`.',
            "Compare the timeout rate with latency percentiles: a latency regression turns "
            "into timeouts once calls reach the client deadline.",
        ),
        (
            "Follow GeminiSloLatencyBurnRate if latency rose.",
            "If deadlines are too tight for the model's normal p99, raise them or use a "
            "faster model; do not hide a regression by raising them.",
        ),
    ),
    n.SHED_SPIKE: Entry(
        "The admission queue sheds (rejects) calls faster than the shed budget allows: "
        "calls would have waited longer than max_wait or past their deadline, so they were "
        "refused at once. It warns; an availability page inhibits it.",
        (
            'Query `gemini_slo:sli_error:ratio_rate5m{objective="shed_ratio"}` and the queue '
            "depth and queue wait panels.",
            "Check utilization: shedding with utilization near 100% means the concurrency "
            "limit is too low for the offered load.",
        ),
        (
            "Raise the concurrency limit if the quota allows it, or add capacity.",
            "If a traffic burst is the cause, shedding is doing its job: confirm it ends.",
        ),
    ),
    n.QUEUE_SATURATED: Entry(
        "Calls wait in the admission queue longer than the queue-wait objective: the "
        "concurrency limit is saturated and every admitted call pays the wait.",
        (
            "Queue depth and queue wait panels of the latency dashboard; utilization close "
            "to 100% confirms saturation.",
        ),
        (
            "Raise the concurrency limit (within quota) or reduce offered load.",
            "Lower max_wait so that calls that cannot be served in time are shed early.",
        ),
    ),
    n.HEADROOM_LOW: Entry(
        "Utilization (requests in flight / concurrency limit) stays above the spec's "
        "headroom ceiling. Latency-mode workloads keep 40-60% headroom so that bursts do "
        "not queue; without it the next burst becomes a latency page.",
        ("Utilization panel against its ceiling line; requests in flight by model.",),
        (
            "Raise the concurrency limit or add capacity before the next peak.",
            "Move background or batch traffic off this workload (to a throughput-mode workload).",
        ),
    ),
    n.TOKEN_THROUGHPUT_LOW: Entry(
        "The workload is busy but generates fewer tokens per second (output + thoughts) "
        "than its floor, sustained: the batch will finish late.",
        (
            "Throughput dashboard: tokens/s (1m, 5m, 1h) against the floor, requests in "
            "flight, 429 rate.",
        ),
        (
            "Low utilization too: feed more work or raise concurrency.",
            "429s: the quota caps throughput; request more or spread across projects/models.",
            "Slow calls: check the model's latency and output lengths.",
        ),
    ),
    n.COST_HIGH: Entry(
        "The workload pays more per 1M billable tokens than its ceiling over the last hour: "
        "a pricier model, longer thinking, or lost caching.",
        (
            "Throughput dashboard: cost per 1M tokens and tokens by type (thoughts and "
            "input vs cached); cost per hour.",
        ),
        (
            "Check the model mix (`gen_ai_request_model`) and thinking budgets.",
            "Use the Batch API or flex tier (50% price) for work that tolerates it.",
        ),
    ),
    n.UNPRICED_CALLS: Entry(
        f"More than {n.UNPRICED_SHARE_MAX:.0%} of the workload's calls over the last hour went "
        "to a model (or a "
        "service tier) the price table does not know. Those calls are counted in "
        "`gemini_slo_client_cost_unpriced_calls_total` and cost $0, so the cost objective "
        "looks met by calls nobody priced.",
        (
            "`gemini-slo status`: the share of unpriced calls per model.",
            "Throughput dashboard, Cost row: unpriced calls per model.",
            "The app's log: one warning per unpriced model names it.",
            "`gemini-slo prices MODEL`: whether (and as what) the table prices it.",
        ),
        (
            "A new model or a non-text product (TTS, image, live audio): add its prices to a "
            "price file and point `GEMINI_SLO_PRICING` (or `configure(pricing=...)`) at it.",
            "A misspelt model name: fix it in the app.",
            "A service tier a model does not offer (priority for embeddings): drop the tier.",
        ),
    ),
    n.UTILIZATION_LOW: Entry(
        "The workload keeps its concurrency limit mostly idle while it has work: "
        "throughput-mode workloads should run hot (80-90%); idle capacity is wasted money "
        "and a lower throughput than possible.",
        ("Utilization panel against its floor; requests in flight vs the limit.",),
        (
            "Raise the number of concurrent workers (or the producer rate) to fill the limit.",
            "If the limit is larger than the quota allows, lower it to what is usable.",
        ),
    ),
    n.RATE_LIMIT_STORM: Entry(
        "More than the allowed share of calls are answered 429 RESOURCE_EXHAUSTED: the "
        "workload runs into its quota.",
        ("429 rate panel of the throughput dashboard; errors by type.",),
        (
            "Reduce concurrency to the quota, or request a quota increase.",
            "Retry 429s with the server's retryDelay, never in a tight loop.",
        ),
    ),
    n.ERROR_BUDGET_BURN: Entry(
        "Failed calls burn the batch workload's error budget: the period's budget will be "
        "gone before the period ends, and the failed calls are work to redo.",
        (
            "Error budget panel of the throughput dashboard; "
            '`gemini_slo:sli_error:ratio_rate1h{objective="error_ratio"}` by outcome.',
        ),
        (
            "Fix the dominant failure (see errors by type); for 429s see GeminiSloRateLimitStorm.",
            "A page means a large share of the batch fails right now: pause the producer "
            "if the failed calls cost money without producing results.",
        ),
    ),
    n.STALLED: Entry(
        "Calls are in flight but no output or thought token has been generated for the "
        "spec's stall time: the batch makes no progress. It pages (and inhibits the "
        "tokens-per-second ticket of the same workload).",
        (
            "Throughput dashboard: tokens/s at zero while requests in flight stay up.",
            "Check the API (status page) and the client process (stuck connections, a "
            "hung event loop).",
        ),
        (
            "Restart stuck workers; cancel and resubmit the in-flight calls.",
            "If calls legitimately run longer than the stall time (very long generations), "
            "raise `stall.after` in the spec.",
        ),
    ),
    n.BATCH_STUCK: Entry(
        "A Batch API job of the workload has been pending (queued, not yet running) for "
        "longer than the spec's `batch.max_queue_time`. The Batch API gives no start "
        "guarantee; a job that does not leave the queue is late work, and it expires "
        "unprocessed after 48 hours.",
        (
            "Batch row of the throughput dashboard: *oldest pending job* and *jobs now* "
            "(pending vs running); `gemini_slo:batch_queue_oldest_age:max` is what the "
            "alert reads.",
            "`client.batches.get(name=...)` on the job: state and create time; "
            "`client.batches.list()` shows whether every job of the project waits (an API "
            "backlog) or only this one.",
            "The gauge is the age of the job as the app last saw it pending: an app that "
            "stopped polling keeps it growing. Check that the poller runs.",
        ),
        (
            "If every job waits, the API is backlogged: nothing to fix client-side; warn "
            "the consumers of the results, and move urgent work to online calls (flex tier).",
            "If one job waits, cancel it (`client.batches.cancel`) and resubmit; split a "
            "very large job into smaller ones.",
            "If jobs legitimately queue this long, raise `batch.max_queue_time`.",
        ),
    ),
    n.BATCH_FAILURE_BURN: Entry(
        "Batch jobs of the workload end FAILED or EXPIRED more often than the spec's "
        "`batch.failure_ratio` allows: at this rate the period's job failure budget is "
        "spent early. Failed jobs deliver no results; their requests are work to redo.",
        (
            "Batch row of the throughput dashboard: *jobs finished by state* and *job "
            "failure ratio*; "
            '`gemini_slo:sli_error:ratio_rate1h{objective="batch_failure_ratio"}` is what '
            "the alert reads.",
            "Expired jobs point at the queue (see GeminiSloBatchJobStuckInQueue); failed "
            "ones at their input: `client.batches.get` shows the job's error.",
        ),
        (
            "For failed jobs, check the input (model name, request size, malformed requests) "
            "and resubmit the failed ones.",
            "For expired jobs, submit smaller jobs or earlier, so that they finish within "
            "the 48-hour window.",
        ),
    ),
    n.BATCH_COMPLETION_BURN: Entry(
        "Too many batch jobs of the workload take longer than the spec's "
        "`batch.completion.threshold` from creation to end: the share of late jobs is above "
        "the completion budget (1 - percentile) over a day and over three days, so results "
        "arrive later than their consumers were promised. Jobs count when they end, so a "
        "job still running past the threshold counts only once it finishes (a job stuck "
        "in the queue raises GeminiSloBatchJobStuckInQueue first).",
        (
            "Batch row of the throughput dashboard: *time to completion* percentiles and "
            "*jobs finished by state*; "
            '`gemini_slo:sli_error:ratio_rate1d{objective=~"batch_completion_.*"}` is what '
            "the alert reads.",
            "Compare queue time with time to completion (both on the Batch row): long "
            "queues point at an API backlog, long runs at job size.",
        ),
        (
            "If jobs wait in the queue, submit earlier or move urgent work to online calls "
            "(flex tier); nothing client-side speeds up an API backlog.",
            "If jobs run long, split them into smaller jobs so that each finishes within "
            "the threshold.",
            "If the threshold is tighter than the Batch API's target turnaround (24 hours), "
            "raise `batch.completion.threshold` to what the API offers.",
        ),
    ),
}


#: The objective labels of the batch alerts (their summary is the workload's batch block;
#: the completion objective's label, ``batch_completion_p95``, depends on its percentile).
BATCH_OBJECTIVES = (FAILURE_RATIO, QUEUE_TIME)


def _pairs(spec: SloSpec, objective: Objective) -> str:
    """'pages: 1h/5m above 8.333% (at least 7 bad events), ...; tickets: ...'."""
    parts: dict[str, list[str]] = {}
    for rule in r.burn_rules_of(spec, objective):
        c = rule.condition
        kind = "pages" if rule.severity is n.Severity.CRITICAL else "tickets"
        parts.setdefault(kind, []).append(
            f"{c.name} above {c.threshold * 100:.4g}% ({c.min_bad_events}+ bad events)"
        )
    return "; ".join(f"{kind}: {', '.join(items)}" for kind, items in parts.items())


def runbook_markdown(spec: SloSpec) -> str:
    """The whole runbook.md text."""
    rules = [rule for w in spec.workloads for rule in r.alerting_group(spec, w)["rules"]]
    lines = [
        "<!-- generated by gemini-slo generate, do not edit: see alerts/runbook.py -->",
        "# gemini-slo alert runbook",
        "",
        "One section per alert. Every alert carries `gemini_slo_workload`, `gemini_slo_mode`",
        "and `severity` (critical pages, warning opens a ticket); objective alerts also carry",
        "`objective`, burn-rate alerts `burn_window`. Dashboards: *Gemini SLO / Latency*,",
        "*Gemini SLO / Throughput* and *Gemini SLO / Overview*.",
        "",
    ]
    for alert in r.alert_names(spec):
        entry = ENTRIES[alert]
        mine = [x for x in rules if x["alert"] == alert]
        severities = sorted({x["labels"][n.LABEL_SEVERITY] for x in mine})
        lines += [f"## {alert}", "", f"Severity: {', '.join(severities)}.", "", entry.meaning, ""]
        if any(n.LABEL_BURN_WINDOW in x["labels"] for x in mine):
            lines += [BURN_SEVERITIES, ""]
        lines.append("Generated for:")
        lines.append("")
        seen: set[tuple[str, str]] = set()
        for x in mine:
            labels = x["labels"]
            key = (labels[q.WORKLOAD], labels.get("objective", ""))
            if key in seen:
                continue
            seen.add(key)
            workload = spec.workload(key[0])
            if workload.batch is not None and (
                key[1] in BATCH_OBJECTIVES or key[1] == workload.batch.completion_name
            ):
                lines.append(f"- `{key[0]}` / `{key[1]}`: {workload.batch.summary}")
                continue
            objective = workload.objective(key[1])
            pairs = _pairs(spec, objective)
            lines.append(
                f"- `{key[0]}` / `{key[1]}`: {objective.summary}" + (f"; {pairs}" if pairs else "")
            )
        lines += ["", "How to confirm:", ""]
        lines += [f"- {c}" for c in entry.confirm]
        lines += ["", "What to do:", ""]
        lines += [f"- {c}" for c in entry.act]
        lines.append("")
    return "\n".join(lines)

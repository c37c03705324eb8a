"""OpenTelemetry SDK views for apps that keep another GenAI instrumentation.

The official ``opentelemetry-instrumentation-google-genai`` records
``gen_ai.client.operation.duration`` and ``gen_ai.client.operation.time_to_first_chunk``
into its own buckets (0.01, 0.02, 0.04 ... 81.92 s): none of them is at a spec threshold
such as 500 ms, so the share of calls under the threshold cannot be counted, only guessed.
These views give both histograms the project's layout, the spec's thresholds included
(:attr:`Workload.bucket_layout <gemini_slo.contract.spec.Workload.bucket_layout>`)::

    from gemini_slo.instrumentation import otel_views
    provider = MeterProvider(metric_readers=[reader], views=otel_views(spec))
    GoogleGenAiSdkInstrumentor().instrument(meter_provider=provider)

``exponential=True`` adds, next to each explicit histogram, a base-2 exponential twin
under the project's twin name (``gemini_slo.client.operation.duration`` ...): the agent
computes its exact percentile gauges from those, as it does for the project's own
instrumentation. The explicit histograms stay: the SLO rules count at their thresholds.
"""

from __future__ import annotations

from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import SloSpec
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)

__all__ = ["otel_views"]


def _layout(spec: SloSpec, workload: str | None) -> S.BucketLayout:
    workloads = (spec.workload(workload),) if workload is not None else spec.workloads
    layouts = [w.bucket_layout for w in workloads]
    # A process that serves several workloads gets every workload's boundaries: a view
    # applies to an instrument, not to one workload's calls.
    return S.BucketLayout(
        duration=S.with_thresholds((), (b for lay in layouts for b in lay.duration)),
        ttft=S.with_thresholds((), (b for lay in layouts for b in lay.ttft)),
    )


def otel_views(
    spec: SloSpec, workload: str | None = None, *, exponential: bool = False
) -> list[View]:
    """Views putting the spec's thresholds into the GenAI duration and TTFT histograms.

    ``workload``: the one workload of the spec this process serves (default: every
    workload's boundaries, merged). ``exponential``: also record an exponential twin of
    each histogram for the agent's percentiles. Raises ``KeyError`` for an unknown workload.
    """
    layout = _layout(spec, workload)
    views = [
        View(
            instrument_name=S.OPERATION_DURATION.name,
            aggregation=ExplicitBucketHistogramAggregation(boundaries=layout.duration),
        ),
        View(
            instrument_name=S.TIME_TO_FIRST_CHUNK.name,
            aggregation=ExplicitBucketHistogramAggregation(boundaries=layout.ttft),
        ),
    ]
    if exponential:
        for explicit, twin in (
            (S.OPERATION_DURATION, S.OPERATION_DURATION_EXPONENTIAL),
            (S.TIME_TO_FIRST_CHUNK, S.TIME_TO_FIRST_CHUNK_EXPONENTIAL),
        ):
            views.append(
                View(
                    instrument_name=explicit.name,
                    name=twin.name,
                    description=twin.description,
                    aggregation=ExponentialBucketHistogramAggregation(
                        max_size=S.EXPONENTIAL_MAX_BUCKETS, max_scale=S.EXPONENTIAL_SCALE
                    ),
                )
            )
    return views

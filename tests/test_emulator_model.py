"""Unit tests of the emulator's pieces: profile loading, the seeded generator, faults and quotas."""

from __future__ import annotations

import math
import random
import statistics
from pathlib import Path

import pytest
from gemini_slo.emulator.errors import ApiError
from gemini_slo.emulator.faults import FaultError, FaultRegistry
from gemini_slo.emulator.model import (
    Knobs,
    Markers,
    count_contents,
    count_text_tokens,
    filler_text,
    make_plan,
    parse_markers,
)
from gemini_slo.emulator.profile import ProfileError, load_profile, parse_profile
from gemini_slo.emulator.quota import QuotaBook
from hypothesis import given, settings
from hypothesis import strategies as st

PROFILE = load_profile()


def test_default_profile_serves_the_documented_models() -> None:
    """The shipped profile has the three generation models and an embedding model."""
    names = [m.name for m in PROFILE.unique_models()]
    assert names[:3] == ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"]
    assert PROFILE.get("models/gemini-embedding-001").kind == "embedding"  # type: ignore[union-attr]
    pro = PROFILE.get("gemini-2.5-pro")
    assert pro is not None and pro.thinking is not None and not pro.thinking.can_disable


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"models": {}}, "models"),
        ({"version": "other/v9", "models": {"m": {}}}, "unsupported version"),
        ({"models": {"m": {"ttft_median_s": "x"}}}, "ttft_median_s"),
        ({"models": {"m": {"ttft_median_s": 1, "ttft_sigma": 0, "speed": 1}}}, "unknown keys"),
        ({"models": {"m": {"ttft_median_s": 1, "ttft_sigma": 0, "kind": "image"}}}, "kind"),
    ],
)
def test_profile_validation(document: dict[str, object], fragment: str) -> None:
    """Profiles that do not follow the schema are rejected with a pointed message."""
    with pytest.raises(ProfileError, match=fragment):
        parse_profile(document)


def test_profile_from_file_with_aliases(tmp_path: Path) -> None:
    """A user profile file with aliases and defaults loads; aliases resolve to the model."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "defaults: {chunk_tokens: 4}\n"
        "models:\n"
        "  m: {ttft_median_s: 0.1, ttft_sigma: 0, aliases: [m-latest]}\n",
        encoding="utf-8",
    )
    profile = load_profile(path)
    assert profile.get("m-latest") is profile.get("m")
    assert profile.get("m").chunk_tokens == 4  # type: ignore[union-attr]
    assert len(profile.unique_models()) == 1


def test_token_rule_and_filler() -> None:
    """One token per word; filler text of n words has n tokens and is deterministic."""
    assert count_text_tokens("  one two\nthree ") == 3
    assert count_text_tokens("") == 0
    for start, n in [(0, 1), (8190, 10), (-3, 5), (5, 20000)]:
        text = filler_text(start, n)
        assert count_text_tokens(text) == n
        assert text == filler_text(start, n)
    assert filler_text(0, 4) + " " + filler_text(4, 6) == filler_text(0, 10)
    tokens, text = count_contents(
        [{"parts": [{"text": "a b"}, {"inlineData": {"mimeType": "image/png", "data": ""}}]}],
        {"parts": [{"text": "sys tem"}]},
    )
    assert tokens == 2 + 258 + 2
    assert text == "a b\nsys tem"


def test_markers() -> None:
    """Markers in the prompt are parsed; text without them costs one substring check."""
    assert parse_markers("plain") == Markers()
    m = parse_markers("x [[emulator:block]] [[emulator:output_tokens=12]] [[emulator:error=503]]")
    assert m == Markers(block=True, safety=False, output_tokens=12, error=503)


def _plan(seed: str, model: str = "gemini-2.5-flash", **config: object) -> object:
    profile = PROFILE.get(model)
    assert profile is not None
    return make_plan(
        random.Random(seed),
        profile,
        prompt_tokens=10,
        generation_config=dict(config),
        cached_content=False,
        markers=Markers(),
        knobs=Knobs(),
        time_scale=1.0,
    )


def test_plan_is_a_function_of_the_rng_seed() -> None:
    """Same RNG seed, same plan; another seed, another plan."""
    assert _plan("1:m:0") == _plan("1:m:0")
    assert _plan("1:m:0") != _plan("1:m:1")


def test_plan_chunks_add_up_and_latency_model_is_lognormal() -> None:
    """Chunks sum to the output; the first delay's median is near TTFT plus thinking time."""
    flash = PROFILE.get("gemini-2.5-flash")
    assert flash is not None and flash.thinking is not None
    firsts = []
    for i in range(2000):
        plan = _plan(f"s:{i}")
        assert sum(plan.chunks) == plan.output_tokens  # type: ignore[attr-defined]
        assert all(n <= flash.chunk_tokens for n in plan.chunks)  # type: ignore[attr-defined]
        firsts.append(plan.delays_s[0])  # type: ignore[attr-defined]
    expected = flash.ttft_median_s + flash.thinking.tokens_median / flash.decode_tokens_per_s
    assert math.isclose(statistics.median(firsts), expected, rel_tol=0.25)


def test_thinking_budget_rules() -> None:
    """Flash-lite does not think unless asked; budgets cap; pro refuses budget 0."""
    assert _plan("a", "gemini-2.5-flash-lite").thoughts_tokens == 0  # type: ignore[attr-defined]
    asked = _plan("a", "gemini-2.5-flash-lite", thinkingConfig={"thinkingBudget": -1})
    assert asked.thoughts_tokens > 0  # type: ignore[attr-defined]
    capped = _plan("a", "gemini-2.5-pro", thinkingConfig={"thinkingBudget": 3})
    assert capped.thoughts_tokens <= 3  # type: ignore[attr-defined]
    with pytest.raises(ApiError) as info:
        _plan("a", "gemini-2.5-pro", thinkingConfig={"thinkingBudget": 0})
    assert info.value.code == 400


def test_max_output_tokens_includes_thinking() -> None:
    """Thinking eats into maxOutputTokens; a tiny limit leaves an empty MAX_TOKENS answer."""
    plan = _plan("b", "gemini-2.5-pro", maxOutputTokens=1)
    assert plan.thoughts_tokens == 1  # type: ignore[attr-defined]
    assert plan.output_tokens == 0  # type: ignore[attr-defined]
    assert plan.finish_reason == "MAX_TOKENS"  # type: ignore[attr-defined]


def test_fault_registry_composes_and_expires() -> None:
    """Factors multiply, delays add, the oldest error wins, per-model faults stay per model."""
    registry = FaultRegistry()
    registry.add("latency_multiplier", factor=2)
    registry.add("latency_multiplier", model="m", factor=3)
    registry.add("extra_delay", seconds=0.5)
    registry.add("error_rate", status=503)
    registry.add("error_rate", status=500)
    rng = random.Random(0)
    decision = registry.decide("m", rng, stream=False)
    assert decision.knobs.latency_factor == 6
    assert decision.knobs.extra_delay_s == 0.5
    assert decision.error == 503
    assert registry.decide("other", rng, stream=False).knobs.latency_factor == 2
    short = registry.add("block", duration_s=0.001)
    assert registry.active(now=short.created_at + 1) and all(
        f.id != short.id for f in registry.active(now=short.created_at + 1)
    )
    assert registry.clear() == 5


def test_fault_registry_validation() -> None:
    """Unknown kinds, missing or bad parameters are FaultErrors (ValueError)."""
    registry = FaultRegistry()
    for kind, params in [
        ("nope", {}),
        ("token_rate", {}),
        ("error_rate", {"status": 99}),
        ("safety", {"rate": 1.5}),
        ("cache_hit", {"fraction": 2}),
        ("extra_delay", {"seconds": "soon"}),
    ]:
        with pytest.raises(FaultError):
            registry.add(kind, **params)
    with pytest.raises(ValueError):
        registry.add("block", duration_s=0)


def test_quota_window() -> None:
    """RPM and TPM over a sliding 60 s window; the retry delay is until the oldest leaves."""
    book = QuotaBook({"m": (2, 100)})
    book.admit("m", 10, now=0.0)
    book.admit("m", 10, now=10.0)
    with pytest.raises(ApiError) as info:
        book.admit("m", 10, now=20.0)
    assert info.value.code == 429
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "40s"} in (
        info.value.details
    )
    book.admit("m", 10, now=60.5)  # the first admission left the window
    book.set_limits("m", rpm=0, tpm=50)
    book.reset()
    book.admit("m", 45, now=100.0)
    with pytest.raises(ApiError):
        book.admit("m", 10, now=101.0)
    book.admit("other", 10**9)  # models without limits are unlimited
    disabled = QuotaBook({"m": (1, 1)}, enabled=False)
    for _ in range(3):
        disabled.admit("m", 5)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    model=st.sampled_from(["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"]),
    max_output=st.one_of(st.none(), st.integers(min_value=1, max_value=5000)),
    budget=st.one_of(st.none(), st.integers(min_value=-1, max_value=3000)),
    wanted=st.one_of(st.none(), st.integers(min_value=0, max_value=3000)),
    safety=st.booleans(),
)
def test_plan_invariants(
    seed: int,
    model: str,
    max_output: int | None,
    budget: int | None,
    wanted: int | None,
    safety: bool,
) -> None:
    """For any request: chunks add up, thinking + output fit maxOutputTokens, delays are >= 0."""
    profile = PROFILE.get(model)
    assert profile is not None and profile.thinking is not None
    if budget == 0 and not profile.thinking.can_disable:
        budget = None
    config: dict[str, object] = {}
    if max_output is not None:
        config["maxOutputTokens"] = max_output
    if budget is not None:
        config["thinkingConfig"] = {"thinkingBudget": budget}
    plan = make_plan(
        random.Random(seed),
        profile,
        prompt_tokens=7,
        generation_config=config,
        cached_content=False,
        markers=Markers(output_tokens=wanted, safety=safety),
        knobs=Knobs(),
        time_scale=1.0,
    )
    assert sum(plan.chunks) == plan.output_tokens >= 0
    assert all(0 <= n <= profile.chunk_tokens for n in plan.chunks)
    assert len(plan.delays_s) == len(plan.chunks) >= 1
    assert all(d >= 0 for d in plan.delays_s)
    limit = max_output or profile.output_token_limit
    assert plan.output_tokens + plan.thoughts_tokens <= limit
    if budget is not None and budget > 0:
        assert plan.thoughts_tokens <= budget
    if budget == 0:
        assert plan.thoughts_tokens == 0
    if safety:
        assert plan.finish_reason == "SAFETY"
    elif wanted is not None and wanted + plan.thoughts_tokens <= limit:
        assert (plan.output_tokens, plan.finish_reason) == (wanted, "STOP")
    else:
        assert plan.finish_reason in ("STOP", "MAX_TOKENS")


# ---- capacity: pools whose latency degrades with load ---------------------------------


def test_pool_factors_follow_the_documented_shape() -> None:
    """No cost below the knee, linear to the capacity, queueing and sharing past it."""
    from gemini_slo.emulator.capacity import Pool

    pool = Pool("p", capacity=10, knee=0.5, ttft_gain=1.5, decode_gain=0.5)
    assert pool.factors(1) == (1.0, 1.0)
    assert pool.factors(5) == (1.0, 1.0)  # at the knee
    ttft, decode = pool.factors(10)  # full: congestion 1
    assert math.isclose(ttft, 2.5) and math.isclose(decode, 1.5)
    ttft, decode = pool.factors(20)  # twice the capacity: congestion 3, decode shared by 2
    assert math.isclose(ttft, 1 + 1.5 * 3) and math.isclose(decode, 1.5 * 2)
    previous = (0.0, 0.0)
    for n in range(1, 40):
        current = pool.factors(n)
        assert current[0] >= previous[0] and current[1] >= previous[1]
        previous = current


def test_profile_pools_and_own_capacity() -> None:
    """`pools` + `pool:` share a pool between models; `capacity:` gives a model its own."""
    profile = parse_profile(
        {
            "pools": {"shared": {"capacity": 8, "ttft_gain": 2}},
            "models": {
                "a": {"ttft_median_s": 0.1, "ttft_sigma": 0, "pool": "shared"},
                "b": {"ttft_median_s": 0.1, "ttft_sigma": 0, "pool": "shared"},
                "c": {"ttft_median_s": 0.1, "ttft_sigma": 0, "capacity": 4},
                "d": {"ttft_median_s": 0.1, "ttft_sigma": 0},
            },
        }
    )
    assert [profile.get(m).pool for m in "abcd"] == ["shared", "shared", "c", None]  # type: ignore[union-attr]
    assert profile.pools["shared"].capacity == 8 and profile.pools["shared"].ttft_gain == 2
    assert profile.pools["c"].capacity == 4
    for bad, fragment in [
        ({"pool": "nope"}, "not one of the profile's pools"),
        ({"pool": "shared", "capacity": 3}, "not both"),
    ]:
        with pytest.raises(ProfileError, match=fragment):
            parse_profile(
                {
                    "pools": {"shared": {"capacity": 8}},
                    "models": {"m": {"ttft_median_s": 0.1, "ttft_sigma": 0, **bad}},
                }
            )
    with pytest.raises(ProfileError, match="knee"):
        parse_profile(
            {
                "pools": {"p": {"capacity": 2, "knee": 1}},
                "models": {"m": {"ttft_median_s": 0, "ttft_sigma": 0}},
            }
        )


def test_the_default_profile_has_no_pools() -> None:
    """Today's figures stay as they were: no shipped model's latency depends on load."""
    assert PROFILE.pools == {}
    assert all(m.pool is None for m in PROFILE.unique_models())


def test_congestion_slows_a_plan_and_none_leaves_it_unchanged() -> None:
    """The same seeded draw under congestion has a longer first delay and slower decode."""
    model = PROFILE.get("gemini-2.5-flash-lite")
    assert model is not None

    def plan(congestion: tuple[float, float] | None) -> object:
        return make_plan(
            random.Random("same"),
            model,
            prompt_tokens=5,
            generation_config={},
            cached_content=False,
            markers=Markers(output_tokens=200),
            knobs=Knobs(),
            time_scale=1.0,
            congestion=congestion,
        )

    free, neutral, busy = plan(None), plan((1.0, 1.0)), plan((3.0, 2.0))
    assert free.delays_s == neutral.delays_s  # type: ignore[attr-defined]
    assert busy.chunks == free.chunks  # type: ignore[attr-defined]
    assert busy.delays_s[0] > free.delays_s[0]  # type: ignore[attr-defined]
    decode_free = sum(free.delays_s[1:])  # type: ignore[attr-defined]
    decode_busy = sum(busy.delays_s[1:])  # type: ignore[attr-defined]
    assert math.isclose(decode_busy, 2.0 * decode_free, rel_tol=1e-9)

"""Emulator profiles: the latency model, output lengths, thinking, quotas and capacity, as data.

A profile is a YAML file (the default ships as ``profiles.yaml`` beside this module; its
header documents every field). It is loaded into frozen dataclasses once at start-up and
never mutated: run-time changes (faults, quota overrides) live in their own registries.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from gemini_slo.emulator.capacity import POOL_KEYS, Pool

PROFILE_VERSION = "gemini-slo/emulator-profile/v1"

_MODEL_KEYS = {
    "display_name",
    "kind",
    "version",
    "ttft_median_s",
    "ttft_sigma",
    "decode_tokens_per_s",
    "decode_jitter",
    "output_tokens_median",
    "output_tokens_sigma",
    "chunk_tokens",
    "thinking",
    "rpm",
    "tpm",
    "cached_content_tokens",
    "input_token_limit",
    "output_token_limit",
    "embedding_dimensions",
    "aliases",
    "pool",
    "capacity",
}
_THINKING_KEYS = {"default_on", "can_disable", "tokens_median", "tokens_sigma", "max_budget"}


class ProfileError(ValueError):
    """A profile file that does not follow the schema."""


@dataclass(frozen=True, slots=True)
class Thinking:
    """How a thinking model thinks: on by default or not, and how much (lognormal)."""

    default_on: bool
    can_disable: bool
    tokens_median: float
    tokens_sigma: float
    max_budget: int


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """One served model."""

    name: str
    display_name: str
    kind: Literal["generate", "embedding"]
    version: str
    ttft_median_s: float
    ttft_sigma: float
    decode_tokens_per_s: float
    decode_jitter: float
    output_tokens_median: float
    output_tokens_sigma: float
    chunk_tokens: int
    thinking: Thinking | None
    rpm: int
    tpm: int
    cached_content_tokens: int
    input_token_limit: int
    output_token_limit: int
    embedding_dimensions: int = 768
    aliases: tuple[str, ...] = ()
    pool: str | None = None
    """The pool whose capacity this model's requests share (None: load costs nothing)."""

    @property
    def methods(self) -> tuple[str, ...]:
        """The API methods this model supports (ListModels' supportedGenerationMethods)."""
        if self.kind == "embedding":
            return ("embedContent", "batchEmbedContents", "countTokens")
        return ("generateContent", "streamGenerateContent", "countTokens")


@dataclass(frozen=True, slots=True)
class Profile:
    """All served models, by name (aliases included)."""

    models: dict[str, ModelProfile] = field(default_factory=dict)
    source: str = "<memory>"
    pools: dict[str, Pool] = field(default_factory=dict)

    def get(self, name: str) -> ModelProfile | None:
        """The model served under ``name`` (a ``models/`` prefix is accepted), or None."""
        return self.models.get(name.removeprefix("models/"))

    def unique_models(self) -> list[ModelProfile]:
        """Each model once, in file order (aliases dropped)."""
        seen: dict[str, ModelProfile] = {}
        for model in self.models.values():
            seen.setdefault(model.name, model)
        return list(seen.values())


def _num(data: dict[str, Any], key: str, where: str, *, positive: bool = False) -> float:
    value = data.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ProfileError(f"{where}: '{key}' must be a number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ProfileError(f"{where}: '{key}' must be {'> 0' if positive else '>= 0'}")
    return float(value)


def _pool(name: str, raw: Any, where: str) -> Pool:
    if not isinstance(raw, dict) or set(raw) - POOL_KEYS or "capacity" not in raw:
        raise ProfileError(f"{where}: a pool is {{capacity, knee, ttft_gain, decode_gain}}")
    knee = _num(raw, "knee", where) if "knee" in raw else None
    if knee is not None and not knee < 1:
        raise ProfileError(f"{where}: 'knee' must be < 1 (a share of the capacity)")
    gains = {k: _num(raw, k, where) for k in ("ttft_gain", "decode_gain") if k in raw}
    return Pool(
        name,
        _num(raw, "capacity", where, positive=True),
        **({"knee": knee} if knee is not None else {}),
        **gains,
    )


def _pools(raw: Any, source: str) -> dict[str, Pool]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ProfileError(f"{source}: 'pools' must be a mapping of pool names")
    return {str(name): _pool(str(name), body, f"pools.{name}") for name, body in raw.items()}


def _model(name: str, raw: Any, defaults: dict[str, Any], pools: dict[str, Pool]) -> ModelProfile:
    where = f"models.{name}"
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: must be a mapping")
    unknown = set(raw) - _MODEL_KEYS
    if unknown:
        raise ProfileError(f"{where}: unknown keys {sorted(unknown)}")
    data = {
        "decode_jitter": 0.15,
        "chunk_tokens": 16,
        "cached_content_tokens": 2048,
        "input_token_limit": 1048576,
        "output_token_limit": 65536,
        # Fallbacks for keys that neither the model nor `defaults` sets: a mid-size model.
        "decode_tokens_per_s": 150.0,
        "output_tokens_median": 200.0,
        "output_tokens_sigma": 0.7,
        "rpm": 0,
        "tpm": 0,
        **defaults,
        **raw,
    }
    kind = data.get("kind", "generate")
    if kind not in ("generate", "embedding"):
        raise ProfileError(f"{where}: 'kind' must be 'generate' or 'embedding'")
    thinking: Thinking | None = None
    raw_thinking = data.get("thinking")
    if raw_thinking is not None:
        if not isinstance(raw_thinking, dict) or set(raw_thinking) - _THINKING_KEYS:
            raise ProfileError(f"{where}.thinking: expected keys {sorted(_THINKING_KEYS)}")
        thinking = Thinking(
            default_on=bool(raw_thinking.get("default_on", True)),
            can_disable=bool(raw_thinking.get("can_disable", True)),
            tokens_median=_num(raw_thinking, "tokens_median", where + ".thinking", positive=True),
            tokens_sigma=_num(raw_thinking, "tokens_sigma", where + ".thinking"),
            max_budget=int(raw_thinking.get("max_budget", 24576)),
        )
    aliases = data.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ProfileError(f"{where}: 'aliases' must be a list of names")
    pool = raw.get("pool")  # never from `defaults`: one shared pool for all is explicit
    if "capacity" in raw:
        if name in pools:
            raise ProfileError(f"{where}: its own pool would shadow the pool {name!r}")
        if pool is not None:
            raise ProfileError(f"{where}: give 'pool' (a shared pool) or 'capacity', not both")
        pools[name] = _pool(name, {"capacity": raw["capacity"]}, where)
        pool = name
    elif pool is not None and (not isinstance(pool, str) or pool not in pools):
        raise ProfileError(f"{where}: 'pool' {pool!r} is not one of the profile's pools")
    return ModelProfile(
        name=name,
        display_name=str(data.get("display_name", name)),
        kind=kind,
        version=str(data.get("version", name)),
        ttft_median_s=_num(data, "ttft_median_s", where),
        ttft_sigma=_num(data, "ttft_sigma", where),
        decode_tokens_per_s=_num(data, "decode_tokens_per_s", where, positive=True),
        decode_jitter=_num(data, "decode_jitter", where),
        output_tokens_median=_num(data, "output_tokens_median", where, positive=True),
        output_tokens_sigma=_num(data, "output_tokens_sigma", where),
        chunk_tokens=max(1, int(_num(data, "chunk_tokens", where, positive=True))),
        thinking=thinking,
        rpm=int(_num(data, "rpm", where)),
        tpm=int(_num(data, "tpm", where)),
        cached_content_tokens=int(_num(data, "cached_content_tokens", where)),
        input_token_limit=int(_num(data, "input_token_limit", where, positive=True)),
        output_token_limit=int(_num(data, "output_token_limit", where, positive=True)),
        embedding_dimensions=int(data.get("embedding_dimensions", 768)),
        aliases=tuple(aliases),
        pool=pool,
    )


def parse_profile(document: Any, source: str = "<memory>") -> Profile:
    """Validate a loaded YAML document and build the frozen profile."""
    if not isinstance(document, dict):
        raise ProfileError(f"{source}: a profile is a mapping")
    version = document.get("version", PROFILE_VERSION)
    if version != PROFILE_VERSION:
        raise ProfileError(f"{source}: unsupported version {version!r}, want {PROFILE_VERSION}")
    defaults = document.get("defaults") or {}
    raw_models = document.get("models")
    if not isinstance(defaults, dict) or not isinstance(raw_models, dict) or not raw_models:
        raise ProfileError(f"{source}: needs a 'models' mapping (and 'defaults' is a mapping)")
    pools = _pools(document.get("pools"), source)
    models: dict[str, ModelProfile] = {}
    for name, raw in raw_models.items():
        model = _model(str(name), raw, defaults, pools)
        for key in (model.name, *model.aliases):
            if key in models:
                raise ProfileError(f"{source}: model name {key!r} defined twice")
            models[key] = model
    return Profile(models=models, source=source, pools=pools)


def with_pools(profile: Profile, pools: dict[str, Pool], members: dict[str, str]) -> Profile:
    """A copy of ``profile`` with ``pools`` added and each model of ``members`` in its pool.

    ``members`` maps a served model name to a pool name, e.g. two models in one pool::

        shared = Pool("shared", capacity=16)
        with_pools(load_profile(), {"shared": shared},
                   {"gemini-2.5-flash": "shared", "gemini-2.5-flash-lite": "shared"})
    """
    all_pools = {**profile.pools, **pools}
    for member, pool_name in members.items():
        if profile.get(member) is None or pool_name not in all_pools:
            raise ProfileError(f"with_pools: unknown model {member!r} or pool {pool_name!r}")
    models: dict[str, ModelProfile] = {}
    for key, model in profile.models.items():
        pool = members.get(model.name, model.pool)
        models[key] = model if pool == model.pool else replace(model, pool=pool)
    return Profile(models=models, source=profile.source, pools=all_pools)


def load_profile(path: str | Path | None = None) -> Profile:
    """Load a profile file, or the shipped default when ``path`` is None."""
    if path is None:
        text = resources.files("gemini_slo.emulator").joinpath("profiles.yaml").read_text("utf-8")
        source = "gemini_slo.emulator/profiles.yaml"
    else:
        text = Path(path).read_text("utf-8")
        source = str(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid YAML: {exc}") from exc
    return parse_profile(document, source)

"""Emulator profiles: the latency model, output lengths, thinking and quotas of each model, as data.

A profile is a YAML file (the default ships as ``profiles.yaml`` beside this module; its
header documents every field). It is loaded into frozen dataclasses once at start-up and
never mutated: run-time changes (faults, quota overrides) live in their own registries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

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


def _model(name: str, raw: Any, defaults: dict[str, Any]) -> ModelProfile:
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
    models: dict[str, ModelProfile] = {}
    for name, raw in raw_models.items():
        model = _model(str(name), raw, defaults)
        for key in (model.name, *model.aliases):
            if key in models:
                raise ProfileError(f"{source}: model name {key!r} defined twice")
            models[key] = model
    return Profile(models=models, source=source)


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

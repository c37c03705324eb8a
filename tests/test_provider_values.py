"""Provider values: every accepted gen_ai.provider.name gets the same rules and panels."""

from __future__ import annotations

from gemini_slo.alerts.rules import alerting_rules, recording_rules
from gemini_slo.contract import signals as S
from gemini_slo.contract.spec import default_spec_path, load_spec
from gemini_slo.dashboards.build import queries


def _rule_exprs() -> list[str]:
    spec = load_spec(default_spec_path())
    out = []
    for document in (recording_rules(spec), alerting_rules(spec)):
        for group in document["groups"]:
            out += [rule["expr"] for rule in group["rules"]]
    return out


def test_no_rule_or_panel_selects_on_the_provider() -> None:
    """No generated expression names gen_ai_provider_name: 'gemini' and 'gcp.gemini' alike count."""
    exprs = _rule_exprs() + [q.expr for q in queries(load_spec(default_spec_path()))]
    assert len(exprs) > 50
    assert not [e for e in exprs if S.LABEL_PROVIDER in e]


def test_accepted_values() -> None:
    """The semconv values the project writes and the official instrumentation's are accepted."""
    assert {S.PROVIDER_GEMINI, S.PROVIDER_VERTEX, "gemini", "vertex_ai"} <= set(S.PROVIDER_VALUES)
    assert S.PROVIDER_GEMINI == "gcp.gemini" and S.PROVIDER_UNKNOWN == "gcp.gen_ai"

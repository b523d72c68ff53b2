"""The ValidatingAdmissionPolicies that hold the admission table's policy rules, and their bindings: pure, from
admission/table.py. The API server evaluates them in process: no operator needs to run.

Two policies, because a binding has one set of actions: the denials (`[Deny]`, failurePolicy Fail: a denial
must hold) and the warnings (`[Warn]`, failurePolicy Ignore: a warning never blocks).

The operator's settings that rules read (table.Settings: the default access mode) are CEL variables of the
warnings policy, written from the same values the operator reads, not a `paramKind` ConfigMap: on Kubernetes
1.36 the API server stops following a built-in paramKind for the rest of its life once no binding names it for
a second (kubernetes/kubernetes#130887, #133827; reproduced on our test control plane with a binding deleted
and created again, as `helm uninstall` then `install` does), and the policy then reads stale settings or,
failing open, warns no more.

`llmpack policies` prints them for local runs; the chart ships the same objects, rendered from
`chart_template()` by `make crd` into templates/admission-policies.yaml.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from llmpack.admission.table import SETTINGS_VARIABLE, Layer, Rule, Settings, in_layer
from llmpack.api.model import GROUP, PLURAL, VERSION
from llmpack.wellknown import MANAGED_BY, MANAGED_BY_LABEL

API_VERSION = "admissionregistration.k8s.io/v1"
MANAGED = {MANAGED_BY_LABEL: MANAGED_BY}


@dataclass(frozen=True)
class Policy:
    name: str
    action: str  # the binding's validationAction: Deny or Warn
    failure_policy: str
    layer: Layer

    @property
    def rules(self) -> tuple[Rule, ...]:
        return in_layer(self.layer)


POLICIES = (
    Policy("llmmodel-denials", "Deny", "Fail", Layer.POLICY_DENY),
    Policy("llmmodel-warnings", "Warn", "Ignore", Layer.POLICY_WARN),
)


SPEC_WRITTEN = "oldObject == null || !has(oldObject.spec) || !has(object.spec) || object.spec != oldObject.spec"


def _validation(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"expression": rule.cel, "message": rule.static_message(), "reason": "Invalid"}
    if expression := rule.message_expression():
        out["messageExpression"] = expression
    return out


def _settings(settings: Settings) -> list[dict[str, str]]:
    return [{"name": SETTINGS_VARIABLE["default_access_mode"], "expression": json.dumps(settings.default_access_mode)}]


def policy(spec: Policy, settings: Settings, labels: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "failurePolicy": spec.failure_policy,
        "matchConstraints": {"resourceRules": [{
            "apiGroups": [GROUP], "apiVersions": [VERSION], "operations": ["CREATE", "UPDATE"],
            "resources": [PLURAL],  # not llmmodels/status: the operator's status writes pass untouched
        }]},
    }
    if spec.action == "Deny":
        # Denials only on a create or a write of the spec: a model admitted before a rule existed (or by the
        # Serving Pack, which took any schedulerConfig) can still have its labels and finalizers changed, its
        # deletion finish, and be taken over, as the API server ratchets the CRD's own rules on unchanged
        # fields. Warnings speak on every write (some read status, e.g. a size below the Hub's figure).
        body["matchConditions"] = [{"name": "spec-written", "expression": SPEC_WRITTEN}]
    if any(r.settings for r in spec.rules):
        body["variables"] = _settings(settings)
    body["validations"] = [_validation(r) for r in spec.rules]
    return {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": spec.name, "labels": labels or MANAGED}, "spec": body}


def binding(spec: Policy, labels: Any = None) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": spec.name, "labels": labels or MANAGED},
            "spec": {"policyName": spec.name, "validationActions": [spec.action]}}


def objects(settings: Settings) -> list[dict[str, Any]]:
    """Everything to apply, each policy before its binding."""
    return [*(policy(p, settings) for p in POLICIES), *(binding(p) for p in POLICIES)]


_LABELS, _ACCESS_MODE = "CHART_LABELS", "CHART_ACCESS_MODE"


def chart_template() -> str:
    """templates/admission-policies.yaml: objects() with the chart's labels and its defaults.storage.accessMode
    (values.schema.json allows only the three access modes, so it is safe inside a CEL string)."""
    docs = [*(policy(p, Settings(_ACCESS_MODE), _LABELS) for p in POLICIES), *(binding(p, _LABELS) for p in POLICIES)]
    text = yaml.safe_dump_all(docs, sort_keys=False, width=120)
    text = text.replace(f"labels: {_LABELS}", 'labels:\n    {{- include "llmpack.labels" . | nindent 4 }}')
    text = text.replace(_ACCESS_MODE, "{{ .Values.defaults.storage.accessMode }}")
    return ("# Generated by `make crd` from src/llmpack/admission/table.py (admission/policies.py): do not edit.\n"
            "# The LLMModel rules the CRD's own CEL cannot hold, evaluated by the API server (docs/concepts.md).\n"
            + text)

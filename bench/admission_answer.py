"""What the webhook's bounds cost: answer() (size, depth, strict numbers, strict JSON) against the bare path it
replaced (json.loads, the verdict, json.dumps), side by side on the same review, in one process.

Rerun: .venv/bin/python bench/admission_answer.py [--rounds 9 --number 2000]
Also prints how long the hostile bodies take (deep nesting, a huge exponent): bounded, never an exception.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmpack.admission.reviews import answer, verdict  # noqa: E402
from tests.unit.factories import body  # noqa: E402


def update_review() -> bytes:
    """An UPDATE of a model with affinity, as the API server sends it: both objects, with managedFields."""
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["a100", "h100"]}]}]}}}
    obj = body({"advanced": {"vllm": {"affinity": affinity}}, "resources": {"limits": {"memory": "64Gi"}}})
    fields = {"f:spec": {"f:model": {"f:name": {}, "f:storage": {"f:size": {}}},
                         "f:advanced": {"f:vllm": {"f:affinity": {"f:nodeAffinity": {}}}}}}
    obj["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1",
                                         "apiVersion": "llm.nebari.dev/v1alpha1", "fieldsV1": fields}]
    request = {"uid": "3b1f", "operation": "UPDATE", "object": obj, "oldObject": obj}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}).encode()


def bare(raw: bytes) -> bytes:
    return json.dumps(verdict(json.loads(raw)["request"])).encode()


def bounded(raw: bytes) -> bytes:
    return answer(raw).body


def per_call_us(function: Callable[[bytes], bytes], raw: bytes, number: int) -> float:
    started = time.perf_counter()
    for _ in range(number):
        function(raw)
    return (time.perf_counter() - started) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    raw = update_review()
    bare_runs, bounded_runs = [], []
    for _ in range(args.rounds):  # alternate, so that the machine's mood falls on both alike
        bare_runs.append(per_call_us(bare, raw, args.number))
        bounded_runs.append(per_call_us(bounded, raw, args.number))
    b, a = statistics.median(bare_runs), statistics.median(bounded_runs)
    print(f"review of {len(raw)} bytes, median of {args.rounds} x {args.number} calls, side by side:")
    print(f"  bare json.loads + verdict + json.dumps: {b:.0f} us")
    print(f"  answer() with its bounds:               {a:.0f} us  (x{a / b:.2f})")
    hostile = {
        "8 MB of nesting": b"[" * 4_000_000 + b"]" * 4_000_000,
        "500 levels inside a 7 MB review": b'{"request": {"uid": "u", "object": ' + b"[" * 500 + b"]" * 500
        + b', "pad": "' + b"x" * 7_000_000 + b'"}}',
        "storage.size 1e99999999": raw.replace(b'"30Gi"', b'"1e99999999"'),
        "uid NaN": raw.replace(b'"3b1f"', b"NaN"),
    }
    for name, data in hostile.items():
        started = time.perf_counter()
        reply = answer(data)
        print(f"  {name}: {reply.status} in {(time.perf_counter() - started) * 1000:.1f} ms")
    print("rerun: .venv/bin/python bench/admission_answer.py")


if __name__ == "__main__":
    main()

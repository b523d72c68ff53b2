"""Admission: pure rules (rules.py) and the webhook that serves them (webhook.py)."""

from llmpack.admission.rules import Finding, review

__all__ = ["Finding", "review"]

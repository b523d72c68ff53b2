"""Admission: pure rules (rules.py), the answer to any review body (reviews.py), and the webhook's
configuration and certificate (webhook.py)."""

from llmpack.admission.rules import Finding, review

__all__ = ["Finding", "review"]

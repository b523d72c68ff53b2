"""Admission: every rule in one table (table.py), placed in the CRD (api/crd.py) and in ValidatingAdmissionPolicies
(policies.py); the same rules in Python for offline checks (rules.py); the webhook that adds warnings needing
other objects (webhook.py, reviews.py).

Nothing is imported here: the API models read their rules' words from table.py, and rules.py reads the models.
"""

"""`llmpack status`: the models, one line each, from their status alone (lines.py renders, live.py fetches)."""

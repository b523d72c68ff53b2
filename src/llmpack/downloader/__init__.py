"""The model-downloader: fetch each byte once (even with several replicas), resume after a crash, verify
every file before it is in place, and say how far it is."""

# Defaults of `llmpack download --connections/--part-size`, here so the CLI can show them without importing
# the downloader (chosen from bench/download.py; docs/storage.md has the figures).
CONNECTIONS = 16
PART_SIZE = 16 << 20

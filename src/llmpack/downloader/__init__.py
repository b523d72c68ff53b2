"""The model-downloader: fetch each byte once (even with several replicas), resume after a crash, verify
every file before it is in place, and say how far it is."""

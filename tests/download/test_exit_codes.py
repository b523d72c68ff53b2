"""Each exit code of `llmpack download` is documented where users look: `--help` and docs/storage.md.
(Each one also has a test that runs into it and checks its error is exactly one line: 2 and 9 in
test_hostile_hub.py, 3-5 in test_downloader.py, 6 and 10 in test_local_dir.py, 7 in test_hostile_hub.py and
test_downloader.py, 8 in test_downloader.py, 11 in test_lock_loss.py.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from llmpack.downloader.errors import EXIT_CODES

DOC = Path(__file__).resolve().parents[2] / "docs" / "storage.md"


def test_every_exit_code_is_in_the_help_and_the_docs() -> None:
    codes = sorted(EXIT_CODES.values())
    assert codes == list(range(2, 12))
    shown = subprocess.run([sys.executable, "-m", "llmpack.cli", "download", "--help"], capture_output=True,
                           text=True, check=True).stdout
    help_text = " ".join(shown.split())
    docs = " ".join(DOC.read_text().split())
    for code in codes:
        assert re.search(rf"[;:] {code} ", help_text), f"exit code {code} is not in --help"
        assert re.search(rf"[:,] {code} ", docs), f"exit code {code} is not in docs/storage.md"

"""The chaos bench's promise, bounded: random SIGKILLs and double-kills never leave a corrupt file in place
or a completion record for an incomplete directory (bench/chaos_download.py runs 100 and 20)."""

from __future__ import annotations

from pathlib import Path

from bench.chaos_download import chaos


def test_random_kills_and_double_kills_leave_no_corrupt_file_and_no_false_completion_record(tmp_path: Path) -> None:
    report = chaos(kills=10, double_kills=2, seed=12, work=tmp_path)
    assert (report.kills, report.double_kills) == (10, 2)
    assert report.corrupt_files == 0
    assert report.false_records == 0
    assert report.failed_runs == []
    assert report.episodes >= 1
    # A kill loses what was in flight: at most a chunk per connection and what the sockets held.
    assert max(report.refetched) <= 4 << 20, report.lines()


def test_random_kills_of_downloads_in_ranged_parts_leave_no_corrupt_file_and_no_false_completion_record(
        tmp_path: Path) -> None:
    report = chaos(kills=10, double_kills=2, seed=21, work=tmp_path, args=("--part-size", "1Mi", "--connections", "4"))
    assert (report.kills, report.double_kills) == (10, 2)
    assert report.corrupt_files == 0
    assert report.false_records == 0
    assert report.failed_runs == []
    assert report.episodes >= 1
    # Four connections, each losing at most a chunk and what its socket held.
    assert max(report.refetched) <= 8 << 20, report.lines()

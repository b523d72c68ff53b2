"""The rules on what we accept from outside, as properties: a file name we accept can only land below
--local-dir and outside our state; a repo id we accept is a plain URL path; a Retry-After we cannot trust
is ignored, and one we trust is never waited on for more than a minute."""

from __future__ import annotations

import email.utils
import posixpath
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmpack.downloader.names import STATE_DIR, listing_problem, path_problem, repo_id_problem
from llmpack.downloader.retry import MAX_RETRY_AFTER, retry_after

# Names built from the pieces an attacker would combine.
pieces = st.sampled_from(["..", ".", "", "a", "b.bin", STATE_DIR, "\\", "\0", "/", "x" * 251, "\n", "é", "\udcff"])
hostile_names = st.lists(pieces, min_size=1, max_size=6).map("/".join) | st.text(max_size=40)


@settings(max_examples=2000)
@given(hostile_names)
def test_an_accepted_file_name_lands_below_the_directory_and_outside_our_state(name: str) -> None:
    if path_problem(name) is not None:
        return
    root = "/cache"
    landed = posixpath.normpath(posixpath.join(root, name))
    assert landed.startswith(root + "/")
    assert landed == f"{root}/{name}"  # already normalised: what is checked is what is written
    assert not landed.startswith(f"{root}/{STATE_DIR}/")
    assert "\0" not in name
    assert "\\" not in name
    assert all(len(part.encode()) <= 250 for part in name.split("/"))


@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4).map("/".join), st.sampled_from(
    ["../", "/", "./", "x/../", "\\", "\0"]))
def test_a_name_with_a_parent_an_absolute_root_or_a_separator_of_another_system_is_refused(name: str,
                                                                                            poison: str) -> None:
    assert path_problem(poison + name) is not None


def test_a_listing_must_not_name_a_file_twice_or_as_another_files_directory() -> None:
    assert listing_problem(["config.json", "sub/a.bin", "sub/b.bin"]) is None
    assert listing_problem(["a", "a"]) == ("a", "is listed twice")
    assert listing_problem(["a/b", "a"]) == ("a", "is both a file and a directory of another listed file")
    assert listing_problem(["a", "a/b"]) == ("a", "is both a file and a directory of another listed file")


@settings(max_examples=2000)
@given(st.text(alphabet="abcXYZ019-_./ \\\0é", max_size=24))
def test_an_accepted_repo_id_is_a_plain_url_path_of_one_or_two_names(repo_id: str) -> None:
    if repo_id_problem(repo_id) is not None:
        return
    parts = repo_id.split("/")
    assert 1 <= len(parts) <= 2
    assert quote(repo_id) == repo_id
    assert not any(p in ("", ".", "..") for p in parts)


@pytest.mark.parametrize("repo_id", ["Qwen/Qwen3-8B", "gpt2", "mistralai/Devstral-Small-2505", "a_b/c.d-e"])
def test_real_repo_ids_are_accepted(repo_id: str) -> None:
    assert repo_id_problem(repo_id) is None


@pytest.mark.parametrize(("value", "seconds"), [
    ("1", 1.0), ("0", 0.0), ("2.5", 2.5), ("120", MAX_RETRY_AFTER), ("3600", MAX_RETRY_AFTER),
    ("-1", None), ("abc", None), ("", None), ("99999999999", None), ("3601", None), ("1e3", None), ("inf", None),
    ("nan", None), (" 7 ", 7.0), ("Wed, 21 Oct 2015 07:28:00", None),
])
def test_retry_after_is_honoured_when_sane_clamped_to_a_minute_and_otherwise_absent(value: str,
                                                                                     seconds: float | None) -> None:
    assert retry_after({"Retry-After": value}) == seconds


def test_retry_after_as_an_http_date_counts_from_now() -> None:
    now = 1_700_000_000.0
    assert retry_after({"Retry-After": email.utils.formatdate(now + 30, usegmt=True)}, now=now) == 30.0
    assert retry_after({"Retry-After": email.utils.formatdate(now - 30, usegmt=True)}, now=now) == 0.0
    assert retry_after({"Retry-After": email.utils.formatdate(now + 7 * 86400, usegmt=True)}, now=now) is None

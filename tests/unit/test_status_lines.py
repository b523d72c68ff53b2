"""`llmpack status` lines, rendered from an LLMModel's status alone."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmpack.show.lines import EMPTY, FULL, Row, bar, board, eta, plain, row

ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
PHASES = ["Pending", "Downloading", "Starting", "Ready", "Degraded", "Error", "Unknown"]
names = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"), min_size=1, max_size=70)
rows = st.builds(Row, namespace=names, name=names, phase=st.sampled_from(PHASES),
                 ready=st.none() | st.integers(0, 999), desired=st.none() | st.integers(0, 999),
                 done=st.none() | st.integers(0, 2**50), total=st.none() | st.integers(1, 2**50),
                 percent=st.none() | st.integers(0, 100), rate=st.none() | st.just("123.4Mi/s"),
                 eta=st.none() | st.integers(0, 10**6).map(lambda n: f"{n}s"), verifying=st.booleans(),
                 message=st.text(max_size=300))


def downloading(percent: int = 40) -> dict[str, Any]:
    return {"metadata": {"namespace": "team-a", "name": "qwen"},
            "status": {"phase": "Downloading", "replicas": {"ready": 0, "desired": 2},
                       "download": {"bytesDone": 8 << 30, "bytesTotal": 20 << 30, "percent": percent,
                                    "rate": "200.0Mi/s", "eta": "61s", "holder": "qwen-abc"},
                       "conditions": [{"type": "Ready", "status": "False", "reason": "Downloading",
                                       "message": "the weights are downloading"}]}}


def test_a_download_shows_a_bar_bytes_rate_and_time_left() -> None:
    [header, line] = board([row(downloading())], 120, colour=False)
    assert header.split() == ["MODEL", "PHASE", "READY", "PROGRESS"]
    assert line.split()[:3] == ["team-a/qwen", "Downloading", "0/2"]
    assert line.endswith(f"{FULL * 12}{EMPTY * 18}  40%  8.0Gi/20.0Gi  200.0Mi/s  ETA 1m01s")


def test_without_a_terminal_a_line_is_plain_facts() -> None:
    assert plain(row(downloading())) == ("team-a/qwen Downloading ready=0/2 download=40% 8.0Gi/20.0Gi "
                                         "rate=200.0Mi/s eta=1m01s message=the weights are downloading")
    ready = {"metadata": {"namespace": "a", "name": "m"}, "status": {"phase": "Ready", "replicas": {
        "ready": 1, "desired": 1}, "conditions": [{"type": "Ready", "status": "True", "message": "serving"}]}}
    assert plain(row(ready)) == "a/m Ready ready=1/1"


def test_a_model_that_is_not_ready_says_why_and_one_without_status_is_unknown() -> None:
    broken = {"metadata": {"namespace": "a", "name": "m"}, "status": {"phase": "Error", "conditions": [
        {"type": "Ready", "status": "False", "message": "Secret hf not found in namespace a:\n create it"}]}}
    assert board([row(broken)], 80, colour=False)[1].split() == ["a/m", "Error", "-/-", "Secret", "hf", "not",
                                                                  "found", "in", "namespace", "a:", "create", "it"]
    assert plain(row({"metadata": {"namespace": "a", "name": "new"}})) == "a/new Unknown ready=-/-"


def test_files_being_verified_say_so_beside_their_bar_and_in_a_plain_line() -> None:
    body = downloading()
    body["status"]["download"]["phase"] = "verifying"
    [_, line] = board([row(body)], 120, colour=False)
    assert line.endswith("40% verifying  8.0Gi/20.0Gi  200.0Mi/s  ETA 1m01s")
    assert "verify=40% 8.0Gi/20.0Gi" in plain(row(body))


@pytest.mark.parametrize(("text", "shown"), [("61s", "1m01s"), ("5s", "5s"), ("3725s", "1h02m05s"),
                                             ("soon", "soon"), (None, None)])
def test_time_left_reads_as_hours_minutes_seconds(text: str | None, shown: str | None) -> None:
    assert eta(text) == shown


@given(st.lists(rows, max_size=8), st.integers(20, 300), st.booleans())
def test_no_line_is_wider_than_the_terminal(models: list[Row], width: int, colour: bool) -> None:
    for line in board(models, width, colour=colour):
        visible = ESCAPE.sub("", line)
        assert len(visible) <= width
        assert visible.isprintable()  # no newline, no escape sequence from a message that moves the cursor


@given(st.integers(0, 100), st.integers(0, 60))
def test_the_bar_is_filled_in_proportion(percent: int, width: int) -> None:
    drawn = bar(percent, width)
    assert len(drawn) == width
    assert drawn.count(FULL) == percent * width // 100
    assert drawn == FULL * drawn.count(FULL) + EMPTY * drawn.count(EMPTY)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                                      max_size=4), max_leaves=12)
statuses = st.fixed_dictionaries({}, optional={
    "phase": json_values, "replicas": json_values | st.fixed_dictionaries({"ready": json_values}),
    "download": json_values | st.fixed_dictionaries({}, optional={k: json_values for k in (
        "bytesDone", "bytesTotal", "percent", "rate", "eta")}),
    "conditions": json_values})


@given(statuses)
def test_any_status_someone_wrote_by_hand_still_renders_in_one_line(status: dict[str, Any]) -> None:
    r = row({"metadata": {"namespace": "a", "name": "m"}, "status": status})
    assert plain(r).isprintable()
    assert all(len(ESCAPE.sub("", line)) <= 80 for line in board([r], 80))

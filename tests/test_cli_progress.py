"""Plain progress lines (cli.progress.PlainProgress): what a long command shows where rich's bar draws nothing."""

from __future__ import annotations

import io

from gridshift.cli.progress import PlainProgress


def test_a_line_when_a_stage_is_first_named_and_at_each_further_tenth() -> None:
    now = [100.0]
    stream = io.StringIO()
    with PlainProgress("simulate", stream=stream, clock=lambda: now[0]) as progress:
        task = progress.add_task("replay", total=200)
        progress.update(task, advance=5, description="static")  # a new stage: a line at 2%
        progress.update(task, advance=5, description="static")  # 5%: nothing
        now[0] = 175.0
        progress.update(task, advance=12, description="static")  # 11%: the first tenth
        progress.update(task, advance=60, description="static")  # 41%: one line, not three
        progress.update(task, advance=2, description="greedy")  # a new stage
        progress.update(task, advance=2, description="static")  # seen before, same tenth: nothing
        progress.update(task, total=400)  # more work found: 86 of 400 (21%), the tenths counted from there
        progress.update(task, advance=10, description="static")  # 24%: nothing
        progress.update(task, advance=28, description="static")  # 31%: the third tenth again
        progress.update(task, advance=276, description="frontier")
    assert stream.getvalue().splitlines() == [
        "simulate:   2% static, 0:00 elapsed",
        "simulate:  11% static, 1:15 elapsed",
        "simulate:  41% static, 1:15 elapsed",
        "simulate:  42% greedy, 1:15 elapsed",
        "simulate:  31% static, 1:15 elapsed",
        "simulate: 100% frontier, 1:15 elapsed",
    ]

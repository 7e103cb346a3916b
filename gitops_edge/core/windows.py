"""Update windows: changes wait outside the hours an operator allows.

Pure: given the device's local time and the configured windows, may an
update start now? A window may cross midnight (22:00-04:00); it belongs to
the day it starts on.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from gitops_edge.model.config import DAYS, UpdateWindow

__all__ = ["DAYS", "UpdateWindow", "in_window", "next_opening", "parse_clock"]


def parse_clock(text: str) -> time:
    hh, sep, mm = text.partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or int(hh) > 24 or int(mm) > 59:
        raise ValueError(f"invalid time {text!r} (use HH:MM)")
    if int(hh) == 24:
        if int(mm):
            raise ValueError(f"invalid time {text!r}")
        return time.max
    return time(int(hh), int(mm))


def in_window(now: datetime, windows: tuple[UpdateWindow, ...]) -> bool:
    if not windows:
        return True
    t = now.time()
    today = DAYS[now.weekday()]
    yesterday = DAYS[(now.weekday() - 1) % 7]
    for w in windows:
        if w.start <= w.end:
            if today in w.days and w.start <= t < w.end:
                return True
        else:  # crosses midnight
            if (today in w.days and t >= w.start) or (yesterday in w.days and t < w.end):
                return True
    return False


def next_opening(now: datetime, windows: tuple[UpdateWindow, ...]) -> datetime | None:
    """When the next window opens (to the minute), for the status line."""
    if not windows:
        return None
    probe = now.replace(second=0, microsecond=0)
    for _ in range(8 * 24 * 60):
        probe += timedelta(minutes=1)
        if in_window(probe, windows):
            return probe
    return None

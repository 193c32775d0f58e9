"""Automation: new connections, the two-hour refresh, syncs in flight, connection health."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def described(decorator: Callable[..., Any], **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """``decorator(**kwargs)`` (``dg.sensor``, ``dg.schedule``) with the function's docstring as the
    description the UI shows: Dagster passes a job's docstring, not a sensor's or a schedule's."""

    def wrap(function: Callable[..., Any]) -> Any:
        return decorator(description=inspect.cleandoc(function.__doc__ or ""), **kwargs)(function)

    return wrap

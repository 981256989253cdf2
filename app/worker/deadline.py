"""A wall-clock budget that a job checks between its stages."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from app.core.exceptions import JobTimeoutError

logger = logging.getLogger("app.worker.deadline")


@dataclass
class Deadline:
    """Seconds a job may run, counted from its creation.

    Parameters
    ----------
    seconds
        The budget.
    what
        What the job does, for the client's message (``"Source detection"``).
    """

    seconds: float
    what: str = "The job"
    start: float = field(default_factory=time.monotonic)

    def check(self, stage: str) -> None:
        """Raise :class:`JobTimeoutError` (504) when the budget is spent; ``stage`` goes to the log."""
        if time.monotonic() - self.start > self.seconds:
            logger.warning("job_deadline", extra={"stage": stage, "seconds": self.seconds, "job": self.what})
            raise JobTimeoutError(f"{self.what} took longer than {self.seconds:g} s")

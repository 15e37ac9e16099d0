"""What every command shares: its exit codes, and how it prints outside text.

Exit codes: 0 success; 1 the command ran but something it had to do failed (a test
notification, an undelivered alert, scores below the bar); 2 the config, the database
or the input is unusable.
"""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

from monitor.core.safetext import shown

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def say(line: str, file: TextIO | None = None) -> None:
    """Print one line that carries text from feeds, servers or users: capped, escaped."""
    print(shown(line), file=file)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

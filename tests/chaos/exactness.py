"""Are staging restarts exact? No staged record twice on the chaos run's staging topics.

De-duplication would hide a repeat from the tables (the same row upserted again); the staging
worker promises more since it runs on the transaction loop: a SIGKILLed worker's open
transaction is aborted and its successor resumes from the offsets committed with the outputs,
so a read_committed reader sees each decision's record once. Judged against the reference run,
which received the same input undisturbed: a (key, value) it holds n times (identical
re-observations, if any) may be on the chaos run n times, never more.
"""

from __future__ import annotations

from collections import Counter

from core.reader import read_topic
from core.settings import Settings
from core.topics import topic_name
from streams.staging.worker import OUTPUTS

Record = tuple[bytes | None, bytes | None]  # (key, value)


def copies(settings: Settings, topic: str) -> Counter[Record]:
    """How often each (key, value) is on ``topic`` (committed records only)."""
    return Counter(
        (msg.key(), msg.value()) for msg in read_topic(settings, topic_name(settings, topic))
    )


def reemitted(reference: Settings, chaos: Settings) -> dict[str, tuple[int, int, int]]:
    """Per staging topic: (records on the reference's, on the chaos run's, copies beyond the
    reference's count of the same (key, value))."""
    out = {}
    for topic in OUTPUTS.values():
        want, got = copies(reference, topic), copies(chaos, topic)
        out[topic] = (want.total(), got.total(), excess(want, got))
    return out


def excess(want: Counter[Record], got: Counter[Record]) -> int:
    """Copies in ``got`` beyond ``want``'s count of the same record (at least one is allowed:
    a record the reference lacks is a difference the tables judge, not a repeat)."""
    return sum(max(0, n - max(want[rec], 1)) for rec, n in got.items())

"""The stream workers' one runtime: a librdkafka consume-transform-produce transaction loop.

Why not faust: faust's per-message path cost more than the staging and feature logic themselves
(~120 µs a record consumed and forwarded on this machine), and its exactly_once could not keep a
partition's state, its outputs and its input offsets together through crashes (DESIGN.md,
"Runtime"). Here each loop turn is one Kafka transaction holding the turn's outputs, the state
changes of the partitions it touched (compacted changelog topics, partition = input partition)
and the consumed offsets; a restarted worker restores the state from the changelogs and resumes
from the committed offsets, which are the same point by construction.

Pieces: ``loop.TransactionalLoop`` (the loop, fencing, rewind, stop, health), ``task.Task`` (what a
role plugs in), ``steps`` (a task's wiring, declared once: its steps, their topics and state,
for the dispatch and for ``oddsflow topology``), ``changelog`` (state topics),
``align.TimestampAligner`` (partitions read in record-timestamp order), ``watchdog`` (a loop that
is stuck or orphaned exits for a restart).
"""

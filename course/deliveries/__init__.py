"""The life of an email: claimed into the send queue -> taken by a worker -> sent | failed | skipped, and the
subscriber's journey with it.

Assume two of everything run at once: two beats, a task delivered twice, a worker killed mid-batch. Each
module holds one part of the rule and says how it holds up:

- :mod:`course.deliveries.claim`: putting emails in the send queue (the service emails a person asks for,
  the beat's claim of what is due, which moves each reader on), and handing out again what a dead
  worker left;
- :mod:`course.deliveries.sending`: a worker's batch, taken from the queue, sent chunk by chunk and
  recorded, and what did not go (skipped, refused, put off);
- :mod:`course.deliveries.suppressions`: the addresses never written to again;
- :mod:`course.deliveries.timing`: the send path's clock, from the settings.

Functions here change the session and the caller commits; a commit that queued batches wakes the workers
as it commits (course/db.py's hand_over_after_commit).
"""

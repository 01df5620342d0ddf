"""The life of a delivery: claimed -> sending -> sent | failed | skipped, and the subscriber's journey with it.

Assume two of everything run at once: two beats, a task delivered twice, a worker killed mid-batch. Each
module holds one part of the rule and says how it holds up:

- :mod:`course.deliveries.claim`: making deliveries (the service emails a person asks for, the beat's
  claim of what is due, the hand-out of what nobody took);
- :mod:`course.deliveries.sending`: a worker's batch, from ``claimed`` to ``sent``, and advancing the
  subscriber;
- :mod:`course.deliveries.suppressions`: the addresses never written to again;
- :mod:`course.deliveries.timing`: the send path's clock, from the settings.

Functions here change the session and the caller commits; what a commit makes due goes to the workers as
it commits (course/db.py's hand_over_after_commit).
"""

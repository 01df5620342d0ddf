"""What happens after the emails go out: the funnel, each day's figures, the answers, per template version.

- :mod:`course.insights.measures`: the figures' names and the vocabulary the sums and the page share;
- :mod:`course.insights.summing`: each figure defined and summed per cohort, and the people behind it;
- :mod:`course.insights.reading`: the studio's page read from the sums.

The figures are sums per sign-up week (a *cohort*), kept in ``insight_counts``. :func:`refresh` sums
them from the deliveries, events and answers in a few set-based statements per range of cohorts (the
beat: every cohort once a day, those still in the course every few minutes; the studio's button and
``course insights`` on demand), so the studio's page reads a few thousand rows, not the tables behind.

One unit everywhere: a *time through the course*. Each sign-up begins one and each restart another, so a
person who starts again counts again, in the week they first signed up; a link counts in the time
through it was sent in (course/links.py). Every figure counts things that belong to one cohort, so any
choice of cohorts is a sum. Each figure is defined once here, as which rows count (``_DELIVERY_MEASURES``,
``_event_measure`` and the rest): the sums group those rows, and :func:`people` lists them, so the people
behind a figure are always the ones it counted.

- A step's figures are split by the release its email was sent with; an event of a step (a click, an
  exercise done, leaving after it) counts under that step's email's release. The page then joins the
  releases that did not change that email (:class:`Changes`): a version of an email is a change to it.
- An email *reached* its reader when the mail server accepted it and no hard bounce came back for it
  (a soft bounce may still be delivered by the provider; a complaint means it arrived). Hard and soft
  bounces and complaints are counted apart, each as a rate.
- Clicks by mail scanners (``automated``) are counted apart, as clicks, and never as people acting.
"""

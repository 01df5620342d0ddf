"""Moves this Python process's calendar ``TESTS_DAYS_AHEAD`` days ahead (time-machine), for the processes
the tests start (``course`` commands, workers, beats): tests/conftest.py puts this folder on their
PYTHONPATH when the suite itself runs days ahead. Python finds this file at start-up by its name.
"""

from tests.support.calendar import travel_from_environment

travel_from_environment()

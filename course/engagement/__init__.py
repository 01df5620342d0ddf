"""What subscribers do with the course, and their data:

- :mod:`course.engagement.clicks`: clicks (people and machines apart) and exercises marked done;
- :mod:`course.engagement.answers`: the checklists' answers and their bands;
- :mod:`course.engagement.privacy`: a subscriber's data, to download and to erase.
"""

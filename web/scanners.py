"""Telling people from machines. Mail security scanners open (and some render) every link in an
email, usually within seconds of delivery; their clicks must not count as a person's."""

from __future__ import annotations

import re

# Agents of link scanners, previewers and scripts (Barracuda, Mimecast, Proofpoint, Microsoft Safe
# Links, ...), and the generic words they share.
SCANNER_AGENTS = re.compile(
    r"bot\b|crawler|spider|preview|scanner|barracuda|mimecast|proofpoint|messagelabs|symantec|safelinks|"
    r"microsoft office|ms-office|skypeuripreview|python-requests|python-urllib|httpx|aiohttp|curl/|wget|"
    r"go-http-client|java/|okhttp|libwww|headlesschrome|phantomjs|slurp|facebookexternalhit|trendmicro|"
    r"forcepoint|fireeye|ironport|sophos|zscaler|cisco|checkpoint|bitdefender|kaspersky|avast|urlscan",
    re.IGNORECASE,
)
# A person needs a few seconds at least to open an email and tap a link in it.
HUMAN_DELAY_SECONDS = 10.0


def is_automated(
    method: str, user_agent: str | None, seconds_since_delivery: float | None, *, still_sending: bool = False
) -> bool:
    """A machine: the request says so, or the link's email is still being handed over (its chunk is not
    recorded as sent: a scanner at the receiving server opens links before the server answers 250), or
    it was delivered seconds ago. The same rule, for the links that record in one statement on
    PostgreSQL, is in course/engagement.py (``_CLICK``)."""
    if agent_is_automated(method, user_agent) or still_sending:
        return True
    return seconds_since_delivery is not None and seconds_since_delivery < HUMAN_DELAY_SECONDS


def agent_is_automated(method: str, user_agent: str | None) -> bool:
    """What the request alone tells: a HEAD, no agent, or a scanner's agent."""
    return method.upper() == "HEAD" or not user_agent or SCANNER_AGENTS.search(user_agent) is not None

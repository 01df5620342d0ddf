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
# A person needs a few seconds at least to open an email and tap a link in it: a click sooner after the
# delivery is a machine's. The click statement judges by it (course/engagement/clicks.py, ``_CLICK``),
# with what the request alone tells (:func:`agent_is_automated`).
HUMAN_DELAY_SECONDS = 10.0


def agent_is_automated(method: str, user_agent: str | None) -> bool:
    """What the request alone tells: a HEAD, no agent, or a scanner's agent."""
    return method.upper() == "HEAD" or not user_agent or SCANNER_AGENTS.search(user_agent) is not None

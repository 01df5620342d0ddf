"""``python -m bench studio``: how long the studio's marketer waits.

In a database of its own, the app in this process with a signed-in publisher, on day 3's words:

- a preview of the form as typed (the server's part: the form read, the email rendered in the sandbox's
  child process, the panel written), N times; what the marketer sees is this plus the editor's pause after
  the last key (``PAUSE_MS``, web/static/studio-editor.js) and the frame's own load;
- a burst of typing: a preview asked every ``BURST_GAP_MS`` while one is still rendering, as fast typing
  does; the newest wins and the older ones stop (409), so the last answers as fast as one alone;
- the day-3 wording change: a save (with its check) and a publish, each N times.

Prints the figures and writes them to bench/results/ as JSON; nothing is asserted.
"""

from __future__ import annotations

import html
import json
import re
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, own_database, studio_client

PASSWORD = "a long benchmark passphrase"  # noqa: S105 - a throwaway account in a throwaway database
PAUSE_MS = 400  # the editor's pause after the last key before it asks for a preview (studio-editor.js)
BURST_GAP_MS = 100
DAY_3 = "_words/day-03.yaml"
_FIELD = re.compile(
    r'<(?:input|textarea) id="[^"]*" name="(w\.[^"]+)"(?: type="text" value="([^"]*)"|[^>]*>(.*?)</textarea>)', re.S
)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
_CHECKED = re.compile(r'<input (?:id="[^"]*" )?type="checkbox" name="(w\.[^"]+)" value="on" checked>')
_SELECT = re.compile(r'<select id="[^"]*" name="(w\.[^"]+)"[^>]*>(.*?)</select>', re.S)
_SELECTED = re.compile(r'<option value="([^"]*)" selected>')


def _form(client: Any) -> dict[str, str]:
    page = client.get(f"/studio/edit?item={DAY_3}").text
    form = {name: html.unescape(value) for name, value in _HIDDEN.findall(page) if name != "w.@order"}
    for name, value, text in _FIELD.findall(page):
        form[name] = html.unescape(value or text)
    for name in _CHECKED.findall(page):
        form[name] = "on"
    for name, options in _SELECT.findall(page):
        chosen = _SELECTED.search(options)
        if chosen:
            form[name] = html.unescape(chosen.group(1))
    return form


def _spread(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return {"median_ms": round(statistics.median(ordered), 1), "p95_ms": round(p95, 1), "max_ms": round(ordered[-1], 1)}


def measure_studio(server_url: str, course_slug: str, runs: int = 20, say: Callable[[str], None] = print,
                   results: Path = RESULTS) -> dict[str, Any]:  # fmt: skip

    from cli.database import upgrade
    from course.db import make_engine, make_sessionmaker
    from course.models.studio import StudioRole
    from course.studio import add_user

    figures: dict[str, Any] = {"runs": runs, "pause_ms": PAUSE_MS}
    with own_database(server_url) as database_url:
        upgrade(database_url)
        engine = make_engine(database_url)
        with make_sessionmaker(engine)() as session:
            add_user(session, "bench@example.org", role=StudioRole.PUBLISHER, password=PASSWORD, now=datetime.now(UTC))
            session.commit()
        with studio_client(database_url, course_slug, "bench@example.org", PASSWORD) as client:
            form = _form(client)
            paragraphs = next(name for name in form if name.endswith(".paragraphs"))

            def preview(number: int) -> tuple[float, int]:
                typed = {**form, "email": "day-03", paragraphs: f"{form[paragraphs]} Typed {number}."}
                started = time.perf_counter()
                answer = client.post("/studio/preview", data=typed)
                return (time.perf_counter() - started) * 1000, answer.status_code

            preview(0)  # the first render warms the renderer's caches, as the page's own first preview does
            timings = []
            for number in range(runs):
                time.sleep(PAUSE_MS / 1000)  # the editor asks after a pause in the typing, never back to back
                elapsed, status = preview(number + 1)
                if status != 200:
                    raise RuntimeError(f"a preview answered {status}")
                timings.append(elapsed)
            figures["preview"] = _spread(timings)
            figures["typed_to_preview_ms"] = round(PAUSE_MS + figures["preview"]["median_ms"], 1)
            say(f"  preview (server): median {figures['preview']['median_ms']:.0f} ms, p95 "
                f"{figures['preview']['p95_ms']:.0f} ms, max {figures['preview']['max_ms']:.0f} ms; after the last key "
                f"(the editor's {PAUSE_MS} ms pause, then this): {figures['typed_to_preview_ms']:.0f} ms")  # fmt: skip

            # Fast typing: a preview every BURST_GAP_MS; the newest wins.
            with ThreadPoolExecutor(5) as pool:
                asked = []
                for number in range(5):
                    asked.append((time.perf_counter(), pool.submit(preview, 100 + number)))
                    time.sleep(BURST_GAP_MS / 1000)
                answers = [future.result() for _, future in asked]
            last_ms, last_status = answers[-1]
            stopped = sum(status == 409 for _, status in answers)
            figures["burst"] = {"previews": len(answers), "superseded": stopped, "last_status": last_status,
                                "last_ms": round(last_ms, 1)}  # fmt: skip
            say(f"  a burst of {len(answers)} previews {BURST_GAP_MS} ms apart: {figures['burst']['superseded']} "
                f"stopped by a newer one, the last answered in {last_ms:.0f} ms ({last_status})")  # fmt: skip

            saves, publishes = [], []
            for number in range(min(runs, 5)):
                form = _form(client)
                started = time.perf_counter()
                saved = client.post("/studio/save", data={**form, "w.title": f"Rituals of your own {number}"})
                saves.append((time.perf_counter() - started) * 1000)
                if saved.status_code != 200:
                    raise RuntimeError(f"a save answered {saved.status_code}")
                editor = client.get(f"/studio/edit?item={DAY_3}").text
                revision = re.search(r'name="revision" value="(\d+)"', editor)
                csrf = re.search(r'name="csrf" value="([^"]+)"', editor)
                assert revision and csrf  # noqa: S101 - the app's own page
                started = time.perf_counter()
                asked_to = {"csrf": csrf.group(1), "item": DAY_3, "revision": revision.group(1), "note": "bench"}
                published = client.post("/studio/publish", data=asked_to)
                publishes.append((time.perf_counter() - started) * 1000)
                if published.status_code != 200:
                    raise RuntimeError(f"a publish answered {published.status_code}")
            figures["save"], figures["publish"] = _spread(saves), _spread(publishes)
            say(f"  the day-3 change: a save (with its check) {figures['save']['median_ms']:.0f} ms, a publish "
                f"{figures['publish']['median_ms']:.0f} ms (medians of {len(saves)})")  # fmt: skip
        engine.dispose()
    results.mkdir(parents=True, exist_ok=True)
    written = results / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-studio.json"
    written.write_text(json.dumps(figures, indent=2) + "\n")
    say(f"Written to {written}")
    return figures

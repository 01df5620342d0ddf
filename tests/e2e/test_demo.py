"""`course demo`, the README's first command: the whole course arrives, and the inbox page shows it."""

from __future__ import annotations

import http.cookiejar
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from ..support.waiting import wait_until

COURSE = Path(sys.executable).parent / "course"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own local server
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def sign_in(base: str, email: str, password: str) -> str:
    """Sign in to the studio as a browser would (cookie, CSRF token); the page it lands on."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with browser.open(f"{base}/studio/sign-in", timeout=5) as page:
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.read().decode())
    assert csrf
    form = urllib.parse.urlencode({"csrf": csrf.group(1), "email": email, "password": password}).encode()
    with browser.open(f"{base}/studio/sign-in", data=form, timeout=10) as landed:
        return str(landed.read().decode())


def test_the_demo_sends_the_whole_course_and_shows_it_in_the_inbox(tmp_path: Path) -> None:
    log = (tmp_path / "demo.log").open("wb")
    # Port 0: the demo binds a free port itself and prints it (a port chosen here could be taken, by another
    # test's server, before the demo starts).
    demo = subprocess.Popen(  # noqa: S603 - our own console script
        [str(COURSE), "demo", "--day-seconds", "1", "--until-complete", "--port", "0"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def printed_port() -> int:
            found = re.search(r"Watch it arrive: http://127\.0\.0\.1:(\d+)/inbox", (tmp_path / "demo.log").read_text())
            if found is None and demo.poll() is not None:
                raise AssertionError((tmp_path / "demo.log").read_text()[-2000:])
            return int(found.group(1)) if found else 0

        port = wait_until(printed_port, timeout=60, what="the demo to print its address")
        inbox = f"http://127.0.0.1:{port}/inbox"

        def inbox_with_welcome() -> str:
            status, page = get(inbox)
            return page if status == 200 and "Welcome: where do you two stand today?" in page else ""

        page = wait_until(inbox_with_welcome, timeout=60, what="the welcome in the inbox page")
        assert "Confirm your place in Building Emotional Intimacy" in page
        first = page.split('href="/inbox/', 1)[1].split('"', 1)[0]
        status, shown = get(f"{inbox}/{first}")
        assert status == 200 and "Its links" in shown and "/unsubscribe/" in shown
        assert get(f"{inbox}/..%2F..%2F..%2Fdemo.log")[0] == 404  # the log, three folders above the outbox
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        # The demo's studio account, printed at start, signs in.
        banner = re.search(r"\((studio@example\.com), password (\S+)\)", (tmp_path / "demo.log").read_text())
        assert banner, (tmp_path / "demo.log").read_text()
        assert "The emails" in sign_in(f"http://127.0.0.1:{port}", banner.group(1), banner.group(2))
        assert demo.wait(timeout=120) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    outbox = tmp_path / "var" / "demo" / "outbox"
    paths = sorted(outbox.glob("*.eml"), key=lambda path: path.stat().st_mtime_ns)  # Date has whole seconds
    messages = [message_from_bytes(path.read_bytes(), policy=default) for path in paths]
    subjects = [str(message["Subject"]) for message in messages]
    assert len(subjects) == 21, (tmp_path / "demo.log").read_text()
    assert subjects[0].startswith("Confirm your place")
    assert subjects[1].startswith("Welcome")
    assert [subject.split(":")[0] for subject in subjects[2:20]] == [f"Day {n}" for n in range(1, 19)]
    assert subjects[20].startswith("You did it")
    assert all(str(message["List-Unsubscribe"]).startswith(f"<http://127.0.0.1:{port}/") for message in messages)

"""The click endpoints under load: ``course web`` as in production, measured with wrk on loopback.

Mail scanners open every link of every email within seconds of its delivery, so the web app takes
bursts of (send rate x links per email) requests. After the send run, on the same database (its
subscribers have just been sent day 1), this starts ``course web`` with its default processes (one per
core) and has wrk request, for a few seconds each: consultation links (record the click and redirect)
of many different subscribers, exercise pages (record and show a page), the landing page and
``/healthz``. Figures: requests a second, p50 and p99 latency, and responses that were not 2xx or 3xx.

wrk (a C load generator; ``apt-get install wrk``) is used rather than Python, which would take the
cores it measures. Without it the click figures are skipped, and the run says so.
"""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.net import free_port, wait_until
from course.links import LinkSigner, Purpose

# Each endpoint: what to request, with how many different links (a subscriber's click is recorded once
# a minute at most, so each request must be a different subscriber's to be a real write).
ENDPOINTS = ("consultation", "exercise page", "landing page", "healthz")
# Open connections: the measure (mail scanners open many links at once); with 8 the same app gave
# about the same requests/s and a p99 under 50 ms, with 32 a p99 of 0.2-1.2 s here (docs/performance.md).
CONNECTIONS = 32
# The links mail scanners open as the emails arrive, measured while a send runs too (``--clicks-during-send``).
DURING_SEND = ("consultation", "exercise page")
_LUA = """
paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["User-Agent"] = "Mozilla/5.0 (bench) Safari/604.1"})
end
"""


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def parse(output: str) -> dict[str, float]:
    """wrk's --latency report: requests a second, p50 and p99 in ms, and responses that were not 2xx/3xx."""
    figures = {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    for percentile in ("50", "99"):
        found = re.search(rf"^\s+{percentile}%\s+(\S+)", output, re.MULTILINE)
        figures[f"p{percentile}_ms"] = round(_seconds(found.group(1)) * 1000, 2) if found else 0.0
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    figures["errors"] = (int(errors.group(1)) if errors else 0) + (
        sum(int(value) for value in sockets.groups()) if sockets else 0
    )
    return figures


def click_paths(environment: dict[str, str], subscriber_ids: list[int], step: int) -> dict[str, list[str]]:
    """What wrk requests for each endpoint: a different subscriber's link each time where a link is signed,
    as their email signed it (their first time through the course)."""
    signer = LinkSigner(environment["SECRET_KEY"], environment["BASE_URL"])
    return {
        "consultation": [
            f"/consultation/{signer.token(Purpose.CONSULTATION, id_, step, None, 1)}" for id_ in subscriber_ids
        ],
        "exercise page": [
            f"/exercise/{signer.token(Purpose.EXERCISE_DONE, id_, step, None, 1)}" for id_ in subscriber_ids
        ],
        "landing page": ["/"],
        "healthz": ["/healthz"],
    }


@contextmanager
def web_server(environment: dict[str, str], folder: Path) -> Iterator[int]:
    """``course web`` with its default processes, answering on a free port (yielded) until the block ends."""
    port = free_port()
    with (folder / "web.log").open("wb") as log:
        web = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "cli.main", "web", "--port", str(port)], env=environment, cwd=folder,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _answered(port, "/healthz", web, folder / "web.log")
        yield port
    finally:
        web.terminate()
        try:
            web.wait(30)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait()


def run_wrk(wrk: str, port: int, paths: list[str], seconds: float, folder: Path, name: str) -> dict[str, float]:
    """wrk's figures for ``seconds`` of requests of ``paths`` (in turn), over :data:`CONNECTIONS`."""
    listed = folder / f"paths-{name.replace(' ', '-')}.txt"
    listed.write_text("\n".join(paths) + "\n")
    script = listed.with_suffix(".lua")
    script.write_text(_LUA % listed)
    output = subprocess.run(  # noqa: S603 - wrk, with our own arguments
        [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    return parse(output)


def _answered(port: int, path: str, process: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Wait (60 s at most) until ``path`` is answered: any answer but a server error; a redirect is not followed.
    With ``process``: fail at once, with the end of its ``log``, when it exits first."""

    def answered() -> bool:
        if process is not None and process.poll() is not None:
            told = log.read_text(errors="replace")[-2000:] if log is not None else ""
            raise RuntimeError(f"`course web` exited ({process.returncode}):\n{told}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path)
            return connection.getresponse().status < 500
        except OSError:
            return False
        finally:
            connection.close()

    wait_until(answered, timeout=60, interval=0.2, what=f"`course web` to answer {path}")


def warm_up(wrk: str, port: int, paths: list[str], folder: Path, name: str) -> list[str]:
    """A second of requests of a tenth of ``paths`` (links of their own: each measured click is then a first
    one), not counted, as a server in production has its connections open and its pages compiled; the links
    left to measure."""
    warm = max(1, len(paths) // 10)
    _answered(port, paths[-1])  # a new server's first click waits for its database connections: not measured
    run_wrk(wrk, port, paths[-warm:], 1, folder, f"{name}-warm-up")
    return paths[:-warm] or paths


def measure_clicks(
    environment: dict[str, str], subscriber_ids: list[int], step: int, seconds: float, folder: Path,
    say: Callable[[str], None] = print,
) -> dict[str, Any] | None:  # fmt: skip
    """Click figures per endpoint, or None without wrk; each after its :func:`warm_up`."""
    wrk = shutil.which("wrk")
    if wrk is None:
        say("wrk is not installed (apt-get install wrk): the click figures are skipped.")
        return None
    paths = click_paths(environment, subscriber_ids, step)
    with web_server(environment, folder) as port:
        figures: dict[str, Any] = {"connections": CONNECTIONS, "seconds": seconds}
        for name in ENDPOINTS:
            figures[name] = run_wrk(wrk, port, warm_up(wrk, port, paths[name], folder, name), seconds, folder, name)
            say(f"  {name:<16}{figures[name]['requests_per_second']:>9,.0f} requests/s, p50 "
                f"{figures[name]['p50_ms']:.1f} ms, p99 {figures[name]['p99_ms']:.1f} ms, "
                f"{figures[name]['errors']} errors")  # fmt: skip
            if figures[name]["errors"]:
                figures[name]["after"] = _answer(f"http://127.0.0.1:{port}{paths[name][0]}")
                said = [
                    line
                    for line in (folder / "web.log").read_text(errors="replace").splitlines()
                    if "unhealthy" in line
                ]
                figures[name]["logged"] = said[-3:]
                say(f"    one more request, after: {figures[name]['after']}; the app's log: {said[-1:] or 'nothing'}")
        return figures


def _answer(url: str) -> str:
    """What the app answers one request now (to explain the errors a load had): status and the body's start."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own loopback address
            return f"{response.status} {response.read(300)!r}"
    except urllib.error.HTTPError as error:
        return f"{error.code} {error.read(300)!r}"
    except OSError as error:
        return f"no answer: {error}"

"""The product's own processes (`course worker`, `course beat`, ...) started for a test and always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

COURSE = Path(sys.executable).parent / "course"


class Processes:
    def __init__(self, logs: Path, environment: dict[str, str]) -> None:
        self.logs = logs
        # Every process starts in an empty folder of its own, as on a fresh machine: nothing may rely
        # on a var/ (or anything else) in the folder it is run from.
        self.workdir = logs / "workdir"
        self.workdir.mkdir(exist_ok=True)
        self.environment = {**os.environ, **environment}
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *arguments: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(COURSE), *arguments], env=self.environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.workdir,
        )  # fmt: skip
        log.close()  # the process has its own copy
        self.running.append((name, process))
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no warm shutdown, no chance to tidy up, as when a machine dies."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for _, process in self.running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def tails(self, lines: int = 40) -> str:
        out = []
        for name, _ in self.running:
            text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(out)


@contextmanager
def processes(logs: Path, environment: dict[str, str]) -> Iterator[Processes]:
    running = Processes(logs, environment)
    try:
        yield running
    finally:
        running.stop_all()

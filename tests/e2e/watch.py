"""What a browser reports while the tests drive it: Content-Security-Policy violations and uncaught
JavaScript errors. A page whose script or style was blocked still looks almost right; the console is
where it shows."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import BrowserContext, ConsoleMessage, Page

# Runs in every document before its own scripts (injected by the browser's debugging protocol, which
# the page's policy does not govern), so a blocked inline script or style is reported, not just skipped.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.effectiveDirective + " blocked " + (event.blockedURI || "inline")
                + " in " + event.documentURI);
});
"""


class BrowserProblems:
    def __init__(self) -> None:
        self.found: list[str] = []

    def watch(self, context: BrowserContext) -> BrowserContext:
        context.add_init_script(script=REPORT_VIOLATIONS)
        context.on("console", self._console)
        context.on("weberror", lambda error: self.found.append(f"uncaught: {error.error}"))
        return context

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("CSP violation"):
            self.found.append(text)
        elif message.type == "error" and not text.startswith("Failed to load resource"):
            self.found.append(f"console error: {text}")


def check_page(page: Page, folder: Path, name: str, width: int) -> None:
    """Keep a screenshot of the whole page in ``folder``, and check it: nothing scrolls sideways at its width,
    and axe-core (injected with every document) finds no serious or critical accessibility problem."""
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width, name
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => ['serious', 'critical'].includes(v.impact)).map(v => v.id + ': ' + v.help)"
    )
    assert violations == [], f"{name}: {violations}"

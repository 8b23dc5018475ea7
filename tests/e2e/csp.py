"""What a page's Content-Security-Policy blocked, as Chromium reports it, and the pages it
loaded without a policy."""

from __future__ import annotations

from dataclasses import dataclass, field

from playwright.sync_api import ConsoleMessage, Page, Response

# A CDP binding, not a script of the page's: the policy under test does not apply to it.
REPORT = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportCspViolation(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@dataclass
class CspWatch:
    violations: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    without_policy: list[str] = field(default_factory=list)

    def _violation(self, text: str) -> None:
        self.violations.append(text)

    def _response(self, response: Response) -> None:
        if response.request.resource_type == "document":
            self.documents.append(response.url)
            if "content-security-policy" not in response.headers:
                self.without_policy.append(response.url)

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(message.text)


def watch_csp(page: Page) -> CspWatch:
    """Collect, from now on and across navigations, every violation the page reports."""
    watch = CspWatch()
    page.expose_function("reportCspViolation", watch._violation)
    page.add_init_script(REPORT)
    page.on("console", watch._console)
    page.on("response", watch._response)
    return watch

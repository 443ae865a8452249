"""axe-core (vendored from the npm registry: tests/browser/vendor/axe.min.js, v4.14.1, MPL-2.0) run on a page.

Injected through page.evaluate — DevTools evaluation, which the page's Content-Security-Policy (script-src 'self')
does not govern, unlike an inline <script> that page.add_script_tag would add."""
from __future__ import annotations

from pathlib import Path

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")


def violations(page) -> list[dict]:
    """axe's violations of every rule it runs by default (WCAG 2.x A and AA, and its best practices) on the page as
    it is now, each as {id, impact, help, nodes: [target selectors]}."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE)
    return page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                             nodes: v.nodes.map(n => n.target.join(" "))}));
    }""")


def describe(found: list[dict]) -> str:
    return "\n".join(f"{v['impact']}: {v['id']} ({v['help']}) on {v['nodes'][:5]}" for v in found)

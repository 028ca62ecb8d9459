"""Take the README's screenshot from the running demo (`make demo`), as the README tells it.

    .venv/bin/python docs/screenshot.py [http://127.0.0.1:8000] [docs/screenshot.png]

Signs in as the demo analyst at 1440 px, runs the masked read and then the write that is held
for approval, and photographs the editor. Needs Playwright and Chromium (/usr/bin/chromium).
"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

READ = "SELECT * FROM customers LIMIT 10"
WRITE = "UPDATE orders SET status = 'shipped' WHERE id = 1"


def main(base: str, path: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=login]", "analyst")
        page.fill("input[name=password]", "warden-analyst-demo")
        page.locator("form button[type=submit]").click()
        page.wait_for_url("**/editor/**")
        for sql, status in ((READ, "succeeded"), (WRITE, "pending_approval")):
            page.locator(".cm-content").click()
            page.keyboard.press("Control+a")
            page.keyboard.type(sql)
            page.keyboard.press("Escape")  # close the completion list before running
            page.keyboard.press("Control+Enter")
            page.wait_for_selector(f"#result [data-status={status}]")
        page.locator(".messages").evaluate("m => m.remove()")  # "Signed in as …" is noise here
        page.screenshot(path=path)
        browser.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        args[0] if args else "http://127.0.0.1:8000",
        args[1] if len(args) > 1 else "docs/screenshot.png",
    )

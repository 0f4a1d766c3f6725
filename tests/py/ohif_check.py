#!/usr/bin/env python3
"""OHIF served by the relay, driven in Debian's headless Chromium (selenium + chromedriver).

usage: ohif_check.py BASE_URL SCREENSHOT_PNG < SESSIONS_JSON

SESSIONS_JSON is a list of {"token": TOKEN, "open": TEXT or null}. For each session, in one
browser: opens BASE_URL/#token=TOKEN (how a reader logs in: see tests/ohif/app-config.js),
waits for OHIF's study list and reads its rows; with "open", clicks the row whose text holds
TEXT, launches "Basic Viewer" and waits until the viewport's canvas shows an image (many
distinct grey levels), then saves a screenshot to SCREENSHOT_PNG.

Prints a JSON list, one item per session:
  {"address": the address bar after login, "rows": [text of each study row],
   "requests": [{"url", "status", "authorization"}] of every /dicomweb request,
   "canvas": {"width", "height", "distinct", "nonblack", "center_distinct", "corners_max"}
             or null, "error": what went wrong, or null}
Waits are generous (a loaded 2-core machine); nothing is timed.
"""
import json
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

WAIT_S = 90

ROWS = "tbody tr[aria-selected]"

# Grey levels of the viewport canvas (red channel; the image is monochrome): over the whole
# canvas, in a box at its centre (the CT's body) and in its four corners (air and background).
CANVAS_STATS = """
const c = document.querySelector('.viewport-element canvas.cornerstone-canvas');
if (!c || !c.width || !c.height) { return null; }
const ctx = c.getContext('2d');
if (!ctx) { return null; }
const w = c.width, h = c.height;
const d = ctx.getImageData(0, 0, w, h).data;
const all = new Set(), center = new Set();
let nonblack = 0, cornersMax = 0;
const k = Math.max(4, Math.floor(Math.min(w, h) / 40));
for (let y = 0; y < h; y++) {
  for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 4;
    const v = d[i];
    all.add(v);
    if (v || d[i + 1] || d[i + 2]) { nonblack++; }
    if (Math.abs(x - w / 2) < w / 10 && Math.abs(y - h / 2) < h / 10) { center.add(v); }
    if ((x < k || x >= w - k) && (y < k || y >= h - k)) {
      cornersMax = Math.max(cornersMax, d[i], d[i + 1], d[i + 2]);
    }
  }
}
return {width: w, height: h, distinct: all.size, nonblack: nonblack,
        center_distinct: center.size, corners_max: cornersMax};
"""


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
              # WebGL on the CPU (SwiftShader), which cornerstone renders with.
              "--enable-unsafe-swiftshader"]:
        o.add_argument(a)
    # The relay's certificate comes from the test's own alliance CA.
    o.set_capability("acceptInsecureCerts", True)
    o.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def wait_for(what, f):
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            v = f()
        except WebDriverException:
            v = None
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {WAIT_S} s for {what}")
        time.sleep(0.25)


def dicomweb_requests(driver, seen):
    """Every /dicomweb request in the performance log since the last call, into `seen`."""
    for entry in driver.get_log("performance"):
        m = json.loads(entry["message"])["message"]
        p = m.get("params", {})
        if m["method"] == "Network.requestWillBeSent" and "/dicomweb" in p["request"]["url"]:
            h = {k.lower(): v for k, v in p["request"]["headers"].items()}
            seen[p["requestId"]] = {"url": p["request"]["url"], "status": None,
                                    "authorization": h.get("authorization")}
        elif m["method"] == "Network.responseReceived" and p["requestId"] in seen:
            seen[p["requestId"]]["status"] = p["response"]["status"]
        elif m["method"] == "Network.loadingFailed" and p["requestId"] in seen:
            seen[p["requestId"]]["status"] = seen[p["requestId"]]["status"] or p.get("errorText")


def click_if_shown(driver, label):
    """Click the shown buttons reading `label`, if any. OHIF re-renders while it loads (its
    guided tour, the study list): a button found a moment ago may be gone, so look again."""
    for _ in range(20):
        try:
            for b in driver.find_elements(By.TAG_NAME, "button"):
                if b.text.strip() == label and b.is_displayed():
                    b.click()
            return
        except StaleElementReferenceException:
            time.sleep(0.25)


def click(driver, what, find):
    """Wait for the element `find()` returns (None while absent), then click it; found again
    whenever OHIF re-rendered it in between (a stale element is not clicked)."""
    def found_and_clicked():
        e = find()
        if e is None:
            return None
        e.click()
        return True
    wait_for(what, found_and_clicked)


def session(driver, base, s, screenshot):
    out = {"address": None, "rows": [], "requests": [], "canvas": None, "error": None}
    seen = {}
    try:
        # A new page each time (a change of fragment alone would not reload OHIF), and a
        # performance log holding only this session's requests.
        driver.get("about:blank")
        dicomweb_requests(driver, {})
        driver.get(base + "/#token=" + s["token"])
        # The rows' texts read in the same look (a row re-rendered meanwhile: look again).
        out["rows"] = wait_for("OHIF's study list", lambda: [
            r.text for r in driver.find_elements(By.CSS_SELECTOR, ROWS)])
        out["address"] = driver.current_url
        if s.get("open"):
            # The investigational-use notice covers the bottom of the page until confirmed.
            click_if_shown(driver, "Confirm and hide")
            if sum(s["open"] in r for r in out["rows"]) != 1:
                raise RuntimeError(f"no single study row holds {s['open']!r}")

            def only(elements):
                return elements[0] if len(elements) == 1 else None
            click(driver, f"the study row holding {s['open']!r}", lambda: only([
                r for r in driver.find_elements(By.CSS_SELECTOR, ROWS) if s["open"] in r.text]))
            click(driver, "the Basic Viewer button", lambda: next(iter([
                b for b in driver.find_elements(By.TAG_NAME, "button")
                if b.text.strip() == "Basic Viewer" and b.is_enabled()]), None))
            out["canvas"] = wait_for(
                "an image in the viewport",
                lambda: (lambda c: c if c and c["center_distinct"] > 16 else None)(
                    driver.execute_script(CANVAS_STATS)))
            # A user would dismiss OHIF's guided tour before looking at the image.
            click_if_shown(driver, "Skip all")
            time.sleep(0.5)
            out["canvas"] = driver.execute_script(CANVAS_STATS)
            driver.save_screenshot(screenshot)
    except Exception as e:  # reported to the test, which shows it with the relay's log
        out["error"] = f"{type(e).__name__}: {e}"
        try:
            out["canvas"] = out["canvas"] or driver.execute_script(CANVAS_STATS)
            out["page_text"] = driver.find_element(By.TAG_NAME, "body").text[:2000]
            driver.save_screenshot(screenshot)
        except WebDriverException:
            pass
    dicomweb_requests(driver, seen)
    out["requests"] = list(seen.values())
    return out


def main():
    base, screenshot = sys.argv[1:3]
    sessions = json.load(sys.stdin)
    driver = browser()
    try:
        results = [session(driver, base, s, screenshot) for s in sessions]
    finally:
        driver.quit()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()

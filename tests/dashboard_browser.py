#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium driven by Selenium
(Debian's chromium, chromium-driver and python3-selenium), in real time.

    dashboard_browser.py URL JOB_ID WORKER_ID[,WORKER_ID...] SCREENSHOT.png

Opens URL and waits (up to 30 s each) until the page lists every worker and
the job with some of its tasks done; clicks the job's row and waits until
its timeline shows bars, then until it shows more (it is live); takes a
screenshot. Prints one JSON object: {"workers": [...], "job_row": "...",
"progress": "k of n", "facts": "...", "bars_first": N, "bars_later": M,
"lanes": L, "console_errors": [...], "screenshot_bytes": N}. Exits 1 when a
wait runs out (with what the page showed).

The page redraws its tables every second, so what is read is read in one
script, never through an element kept across redraws.
"""
import json
import os
import sys

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

url, job_id, workers, screenshot = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]

READ = """
const job = arguments[0];
const row = document.querySelector(`tr[data-job="${job}"]`);
const timeline = document.querySelector("#timeline svg");
return {
  workers: [...document.querySelectorAll("tr[data-worker]")].map(r => r.dataset.worker),
  job_row: row ? row.innerText : null,
  progress: row ? row.querySelector(".bar").title : null,
  selected: row ? row.classList.contains("selected") : false,
  facts: document.getElementById("d-facts").textContent,
  bars: timeline ? timeline.querySelectorAll("rect.task").length : 0,
  lanes: timeline ? timeline.querySelectorAll("rect.lane").length : 0,
};
"""

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1400,1100", "--user-data-dir=" + os.path.dirname(screenshot) + "/profile"):
    options.add_argument(arg)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def read():
    return driver.execute_script(READ, job_id)


try:
    driver.get(url)
    wait = WebDriverWait(driver, 30, poll_frequency=0.2)
    first = {}
    try:
        wait.until(lambda d: all(w in read()["workers"] for w in workers))
        wait.until(lambda d: (read()["progress"] or "0 of").split(" ")[0] not in ("", "0"))
        # Select the job as a user does: a click on its row.
        driver.execute_script(
            "document.querySelector(`tr[data-job=\"${arguments[0]}\"] td`).click()", job_id)
        wait.until(lambda d: read()["bars"] > 0)
        first = read()
        wait.until(lambda d: read()["bars"] > first["bars"])
    except TimeoutException:
        print(json.dumps({"timeout": True, "seen": read(), "first": first}))
        sys.exit(1)
    later = read()
    driver.save_screenshot(screenshot)
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    print(json.dumps({
        "workers": later["workers"],
        "job_row": later["job_row"],
        "progress": later["progress"],
        "selected": later["selected"],
        "facts": later["facts"],
        "bars_first": first["bars"],
        "bars_later": later["bars"],
        "lanes": later["lanes"],
        "url": driver.current_url,
        "console_errors": errors,
        "screenshot_bytes": os.path.getsize(screenshot),
    }))
finally:
    driver.quit()

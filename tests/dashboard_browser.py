#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium driven by Selenium
(Debian's chromium, chromium-driver and python3-selenium), in real time.

    dashboard_browser.py URL JOB_ID WORKER_ID[,WORKER_ID...] SCREENSHOT.png

Opens URL, waits (up to 30 s) until the page lists every worker and the
job with some of its tasks done, takes a screenshot, and prints one JSON
object: {"workers": [...], "job_row": "...", "progress": "k of n",
"console_errors": [...], "screenshot_bytes": N}. Exits 1 when a wait runs
out (with what the page showed).
"""
import json
import os
import sys

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, job_id, workers, screenshot = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4]

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1400,900", "--user-data-dir=" + os.path.dirname(screenshot) + "/profile"):
    options.add_argument(arg)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    driver.get(url)
    wait = WebDriverWait(driver, 30)

    def listed(d):
        return all(d.find_elements(By.CSS_SELECTOR, f'tr[data-worker="{w}"]') for w in workers)

    def progressing(d):
        rows = d.find_elements(By.CSS_SELECTOR, f'tr[data-job="{job_id}"]')
        if not rows:
            return False
        done = rows[0].find_element(By.CSS_SELECTOR, ".bar").get_attribute("title")
        return not done.startswith("0 of")

    try:
        wait.until(listed)
        wait.until(progressing)
    except TimeoutException:
        print(json.dumps({"timeout": True, "page": driver.find_element(By.TAG_NAME, "main").text}))
        sys.exit(1)
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-job="{job_id}"]')
    driver.save_screenshot(screenshot)
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    print(json.dumps({
        "workers": [e.get_attribute("data-worker")
                    for e in driver.find_elements(By.CSS_SELECTOR, "tr[data-worker]")],
        "job_row": row.text,
        "progress": row.find_element(By.CSS_SELECTOR, ".bar").get_attribute("title"),
        "console_errors": errors,
        "screenshot_bytes": os.path.getsize(screenshot),
    }))
finally:
    driver.quit()

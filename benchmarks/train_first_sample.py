"""Time from pressing Train to the first samples in the Train adapter tab, in a real browser on the real app.

    python benchmarks/train_first_sample.py                      # embedded model, example images, defaults
    python benchmarks/train_first_sample.py --screenshot docs/images/screenshots/train-running.png

Starts `python app.py` in a fresh process (so the first click also loads the model, as a user's first
click does), drives Debian's chromium with playwright: Train adapter tab, example images, Train. Times
the tuning-free sample and the first tuned sample (the issue's goal: within 30 s), then presses Stop and
times until the stopped adapter is offered. Writes benchmarks/results/train_first_sample.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def start_app(port: int, outputs: str) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "SELFCASCADE_OUTPUT_DIR": outputs,
           "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return app
        except OSError:
            time.sleep(0.5)
    app.terminate()
    raise SystemExit("the app did not start within 180 s")


def set_number(page, selector: str, value: int) -> None:
    box = page.locator(selector)
    box.fill(str(value))
    box.press("Enter")


def measure(page, url: str, steps: int, every: int, screenshot: str | None) -> dict:
    page.goto(url)
    page.get_by_role("tab", name="Train adapter").click()
    page.locator("#use-examples input[type=checkbox]").check()
    set_number(page, "#train-steps input[type=number]", steps)
    set_number(page, "#sample-every input[type=number]", every)
    started = time.perf_counter()
    page.locator("#train").click()
    page.wait_for_selector("#train-reference img", timeout=300_000)
    reference = time.perf_counter() - started
    page.wait_for_selector("#train-sample img", timeout=300_000)
    first = time.perf_counter() - started
    page.wait_for_function("document.querySelector('#train-status')?.innerText.includes('steps/s')",
                           timeout=60_000)
    if screenshot:
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=screenshot, full_page=True)
    page.locator("#train-stop").click()
    stop = time.perf_counter()
    page.wait_for_function("document.querySelector('#train-status')?.innerText.includes('Stopped at step')",
                           timeout=120_000)
    return {"reference": reference, "first": first, "stop": time.perf_counter() - stop,
            "status": page.locator("#train-status").inner_text().splitlines()[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=7880)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--screenshot", default=None, help="save the page at the first tuned sample")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as outputs:
        app = start_app(args.port, outputs)
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                result = measure(page, f"http://127.0.0.1:{args.port}/", args.steps, args.every, args.screenshot)
                browser.close()
        finally:
            app.terminate()
            app.wait(timeout=30)
    load = os.getloadavg()[0]
    threads = os.environ.get("OMP_NUM_THREADS", "all cores")
    table = "\n".join([
        f"Embedded model, example images, stage 128 px, {args.steps} steps, sample every {args.every}; fresh app "
        f"process (the click loads the model); torch threads: {threads}; load average {load:.1f} on "
        f"{os.cpu_count()} cores.",
        "",
        "| from pressing Train to | seconds |",
        "|---|---|",
        f"| the tuning-free sample | {result['reference']:.1f} |",
        f"| the first tuned sample (step {args.every}) | {result['first']:.1f} |",
        f"| from pressing Stop to the saved adapter | {result['stop']:.1f} |",
        "",
        f"Status after Stop: {result['status']}",
    ])
    print(table)
    (ROOT / "benchmarks" / "results" / "train_first_sample.md").write_text(table + "\n")


if __name__ == "__main__":
    main()

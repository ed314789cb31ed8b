"""A real browser (Debian's chromium driven by playwright) uses the app: type, click, watch stages appear."""

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture(scope="module")
def page():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    from app import demo

    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        tab = browser.new_page(viewport={"width": 1400, "height": 1100})
        tab.goto(demo.local_url)
        yield tab
        browser.close()
    demo.close()


def test_generate_in_the_browser(page):
    SCREENSHOTS.mkdir(exist_ok=True)
    prompt = page.locator("#prompt textarea")
    prompt.fill("a large green triangle on a black background")
    page.locator("#generate").click()
    page.wait_for_selector("#stages img", timeout=120_000)  # the first stage pivot appears mid-run
    page.screenshot(path=str(SCREENSHOTS / "generate-running.png"))
    page.wait_for_function("document.querySelector('#status')?.innerText.includes('Done')", timeout=180_000)
    assert page.locator("#stages img").count() >= 3
    assert page.locator("#result img").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "generate-done.png"), full_page=True)
    status = page.locator("#status").inner_text()
    assert "hidiffusion-pyramid" in status and "pivot anchoring 0.5" in status  # what the run used is shown


def test_two_images_in_the_browser(page):
    page.get_by_role("tab", name="Generate").click()
    page.locator("#prompt textarea").fill("a small yellow square on a gray background")
    count = page.locator("#num-images input[type=number]")
    count.fill("2")
    count.press("Enter")
    page.locator("#images").wait_for(timeout=10_000)  # the batch gallery shows once more than one is asked for
    page.locator("#generate").click()
    page.wait_for_function("document.querySelectorAll('#images img').length >= 2 && "
                           "document.querySelector('#status')?.innerText.includes('Done')", timeout=240_000)
    assert page.locator("#images img").count() == 2
    assert "seed" in page.locator("#images").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "generate-batch.png"), full_page=True)
    count.fill("1")
    count.press("Enter")


def open_settings(page, accordion: str, selector: str):
    """Open an accordion of the Generate tab and return one of its fields once it is shown."""
    page.get_by_role("tab", name="Generate").click()
    page.get_by_text(accordion, exact=True).click()
    field = page.locator(selector)
    field.wait_for(timeout=10_000)
    return field


def test_upper_stage_choice_is_in_the_sampling_settings(page):
    field = open_settings(page, "Sampling", "#upper input")
    assert field.input_value() == "hidiffusion-pyramid"  # the embedded preset's
    anchor = page.locator("#anchor input[type=number]")
    assert float(anchor.input_value()) == 0.5  # the embedded preset anchors at half weight
    page.screenshot(path=str(SCREENSHOTS / "sampling-settings.png"), full_page=True)


def test_picking_direct_shows_plain_and_leaving_it_restores_the_strategy(page):
    page.get_by_role("tab", name="Generate").click()
    field = page.locator("#upper input")
    if not field.is_visible():  # the accordion may be open already (an earlier test opened it)
        page.get_by_text("Sampling", exact=True).click()
    field.wait_for(timeout=10_000)
    assert field.input_value() == "hidiffusion-pyramid"
    page.locator("#mode").get_by_label("direct").check()  # the paper's baseline: one plain full-size call
    page.wait_for_function("document.querySelector('#upper input')?.value === 'plain'", timeout=10_000)
    page.locator("#mode").get_by_label("tuning-free").check()
    page.wait_for_function("document.querySelector('#upper input')?.value === 'hidiffusion-pyramid'",
                           timeout=10_000)


def test_precision_and_memory_settings(page):
    field = open_settings(page, "Precision and memory", "#dtype input")
    assert field.input_value() == "auto"
    assert page.locator("#vae-tiling input[value=auto]").is_checked()


def test_train_an_adapter_and_use_it(page):
    page.get_by_role("tab", name="Train adapter").click()
    page.locator("#use-examples input[type=checkbox]").check()
    for field, value in (("#train-steps", "3"), ("#sample-every", "2")):
        box = page.locator(f"{field} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.locator("#train").click()
    page.wait_for_selector("#train-sample img", timeout=240_000)  # the step-2 sample, mid-run
    page.wait_for_function("document.querySelector('#train-status')?.innerText.includes('Trained')",
                           timeout=240_000)
    assert page.locator("#train-reference img").count() == 1  # the tuning-free one, beside it
    page.screenshot(path=str(SCREENSHOTS / "train-done.png"), full_page=True)
    page.locator("#use-adapter").click()
    page.wait_for_function("document.querySelector('#mode input[value=tuned]')?.checked", timeout=30_000)
    page.locator("#generate").click()
    # The first run's "Done" is still shown: wait for this run to start, then to finish.
    page.wait_for_function("document.querySelector('#status')?.innerText.includes('Stage')", timeout=60_000)
    page.wait_for_function("document.querySelector('#status')?.innerText.includes('Done')", timeout=180_000)
    assert "Not run" not in page.locator("#status").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "generate-tuned.png"), full_page=True)


def test_video_in_the_browser(page):
    SCREENSHOTS.mkdir(exist_ok=True)
    page.get_by_role("tab", name="Video").click()
    page.locator("#video-prompt textarea").fill("a blue circle moving left")
    for field, value in (("#video-frames", "4"), ("#video-width", "128"), ("#video-height", "128")):
        box = page.locator(f"{field} input")
        box.fill(value)
        box.press("Enter")
    page.locator("#video-motion").get_by_label("right").check()  # steer against the prompt's "left"
    page.locator("#video-run").click()
    page.wait_for_function("document.querySelector('#video-status')?.innerText.includes('Stage')", timeout=120_000)
    page.screenshot(path=str(SCREENSHOTS / "video-running.png"))
    page.wait_for_function("['Done', 'Not run', 'Stopped'].some(word => "
                           "document.querySelector('#video-status')?.innerText.includes(word))", timeout=240_000)
    status = page.locator("#video-status").inner_text()
    assert "Done" in status, status
    assert page.locator("#video-stages img").count() >= 2  # a strip per stage
    source = page.locator("#video-result video").get_attribute("src")
    assert source and ".mp4" in source
    assert "4 frames" in page.locator("#video-status").inner_text()
    assert "steered right" in page.locator("#video-status").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "video-done.png"), full_page=True)

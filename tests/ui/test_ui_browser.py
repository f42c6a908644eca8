"""The web app in a real browser: headless Chromium (Debian's, driven by Playwright's Python
package) against a live server on a free port.

Without Chromium these tests fail with a one-line message saying how to install it (``make
setup-test`` does, as root); ``GENVISION_SKIP_BROWSER=1`` skips them on purpose (never in CI,
where a skip is a failure). Screenshots go to ``GENVISION_ARTIFACTS`` (default
``build/test-artifacts/ui``). The page's console errors are collected and must stay empty.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from ui_helpers import TOKEN

#: generous bounds: a loaded CI machine must not fail them (the targets are in benchmarks/ui_latency.py)
SLOW = 10_000  # ms
ARTIFACTS = Path(os.environ.get("GENVISION_ARTIFACTS", "build/test-artifacts/ui"))
INSTALL = (
    "Chromium is needed for the browser tests: run `make setup-test` as root (it apt-get installs "
    "Debian's chromium) or `sudo apt-get install chromium`, or set GENVISION_CHROMIUM=/path/to/chrome; "
    "GENVISION_SKIP_BROWSER=1 skips them on purpose"
)


def chromium_path() -> str | None:
    for candidate in (os.environ.get("GENVISION_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (
            path := shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        ):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    if os.environ.get("GENVISION_SKIP_BROWSER") == "1":
        pytest.skip("GENVISION_SKIP_BROWSER=1: browser tests skipped on purpose")
    path = chromium_path()
    if path is None:
        pytest.fail(INSTALL, pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(ui_runs):
    import uvicorn

    from genvision.ui import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(ui_runs, token=TOKEN)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    t0 = time.time()
    while not srv.started:
        assert time.time() - t0 < 30, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture()
def page(browser, server):
    url, _ = server
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"{url}/?token={TOKEN}")
    pg.set_default_timeout(SLOW * 3)
    pg.expected_errors = []  # a test that sends bad input on purpose names the error it expects
    yield pg
    context.close()
    unexpected = [e for e in errors if not any(x in e for x in pg.expected_errors)]
    assert not unexpected, f"console errors in the browser: {unexpected}"


def shot(pg, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def until(check, timeout: float = SLOW * 3 / 1000) -> None:
    """Poll ``check()`` from Python (Playwright's wait_for_function evaluates a string in the page,
    which the app's Content-Security-Policy forbids)."""
    t0 = time.time()
    while not check():
        assert time.time() - t0 < timeout, "timed out"
        time.sleep(0.05)


def decode(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_runs_page_and_a_run(page, server):
    card = page.locator('.card[data-run="ddpm-digits"]')
    card.wait_for()
    assert "finished" in card.inner_text()
    assert page.locator('.card[data-run="vae-digits"]').count() == 1
    until(
        lambda: page.locator(".card img.grid").evaluate_all(
            "els => els.every(i => i.complete && i.naturalWidth > 0)"
        )
    )
    shot(page, "runs")
    card.locator("h3 a").click()
    page.locator(".report table").first.wait_for()
    assert "ddpm on digits" in page.locator(".report").inner_text()
    assert page.locator("#evaluate").is_enabled()


def test_sample_four_images_equal_the_cli(page, server, ui_runs, tmp_path):
    from genvision.cli import main

    url, _ = server
    page.goto(f"{url}/#/sample/ddpm-digits")
    page.fill("#n", "4")
    page.fill("#seed", "11")
    t0 = time.time()
    page.click("#go")
    page.locator("#samples img").first.wait_for(timeout=SLOW)
    first = time.time() - t0
    page.locator("#sample-status[data-done='1']").wait_for()
    assert first * 1000 < SLOW
    shown = page.locator("#samples img")
    assert shown.count() == 4
    assert (
        main(
            [
                "sample",
                str(ui_runs / "ddpm-digits"),
                "--n",
                "4",
                "--seed",
                "11",
                "--out",
                str(tmp_path / "cli.npz"),
            ]
        )
        == 0
    )
    with np.load(tmp_path / "cli.npz") as f:
        cli = f["images"][..., 0]
    for k in range(4):
        np.testing.assert_array_equal(decode(shown.nth(k).get_attribute("src")), cli[k])
    with page.expect_download() as dl:
        page.locator('#samples figure[data-k="2"] a').click()
    im = Image.open(dl.value.path())
    np.testing.assert_array_equal(np.asarray(im), cli[2])
    assert json.loads(im.text["genvision"])["index"] == 2
    page.click("#same-seed")  # the same seed again: the same images
    page.locator("#sample-status[data-done='1']").wait_for()
    np.testing.assert_array_equal(decode(page.locator("#samples img").nth(0).get_attribute("src")), cli[0])
    shot(page, "sample")


def test_draw_a_mask_and_inpaint(page, server):
    url, _ = server
    page.goto(f"{url}/#/apps?run=ddpm-digits")
    page.locator('#app-tabs button[data-app="inpaint"]').click()
    page.locator("#thumbs img[data-index]").nth(2).click()
    canvas = page.locator("#paint")
    canvas.wait_for()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.45)
    page.mouse.down()
    for i in range(10):
        page.mouse.move(box["x"] + box["width"] * (0.3 + 0.04 * i), box["y"] + box["height"] * 0.45, steps=2)
    page.mouse.up()
    page.click("#run-app")
    page.locator("#app-status[data-done='1']").wait_for()
    panels = {
        page.locator(".panel").nth(i).get_attribute("data-title"): decode(
            page.locator(".panel img").nth(i).get_attribute("src")
        )
        for i in range(page.locator(".panel").count())
    }
    assert set(panels) == {"input", "degraded", "output"}
    shown = panels["degraded"].astype(int)  # grey input, the painted (missing) pixels red
    hole = (shown[..., 0] == 255) & (shown[..., 1] == 0) & (shown[..., 2] == 0)
    assert hole.any() and not hole.all()
    assert (shown[~hole][:, 0] == shown[~hole][:, 1]).all()
    known = ~hole
    np.testing.assert_array_equal(panels["output"][known], panels["input"][known])
    shot(page, "inpaint")


def test_start_a_training_run_and_watch_it(page, server, ui_runs):
    url, _ = server
    page.goto(f"{url}/#/train")
    page.select_option("#model", "ddpm")
    page.fill("#data", "digits")
    page.fill("#steps", "20")
    page.fill("#name", "browser-run")
    page.fill("#settings", "train.log_every=1")
    page.click("#start")
    job = page.locator(".job").first
    job.wait_for()
    fractions = set()
    t0 = time.time()
    while time.time() - t0 < 120:
        for f in page.locator(".job .progress").evaluate_all("els => els.map(e => e.dataset.fraction)"):
            fractions.add(float(f))
        if "finished" in job.inner_text():
            break
        time.sleep(0.1)
    assert "finished" in job.inner_text(), job.inner_text()
    page.locator(".job .progress[data-fraction='1.0000']").first.wait_for()
    fractions.add(1.0)
    assert len(fractions) >= 2 and max(fractions) == 1.0, fractions  # the bar moved, then filled
    shot(page, "train")
    meta = json.loads((ui_runs / "browser-run" / "config.json").read_text())
    assert meta["status"] == "finished" and meta["train_config"]["steps"] == 20


def test_compare_two_runs(page, server):
    url, _ = server
    page.goto(f"{url}/#/compare?runs=ddpm-digits,vae-digits")
    table = page.locator("#compare-table")
    table.wait_for()
    text = table.inner_text()
    assert "ddpm" in text and "vae" in text


def test_quiz_records_answers(page, server, ui_runs):
    url, _ = server
    page.goto(f"{url}/#/quiz/vae-digits")
    page.fill("#per-kind", "2")
    page.click("#quiz-start")
    for _ in range(4):
        page.locator("#quiz-image").wait_for()
        until(lambda: page.locator("#quiz-image").evaluate("i => i.complete"))
        page.click("#says-real")
    page.locator("#quiz-done").wait_for()
    assert "human error rate 0.5" in page.locator("#quiz-done").inner_text()  # two of four are real
    summary = json.loads((ui_runs / "vae-digits" / "human_eval.json").read_text())
    assert summary["judgements"] == 4 and summary["error_rate"] == 0.5
    page.goto(f"{url}/#/run/vae-digits")
    page.locator(".report").wait_for()
    assert "Human judgement" in page.locator(".report").inner_text()


def test_bad_input_shows_the_one_line(page, server):
    url, _ = server
    page.expected_errors.append("status of 400 (Bad Request)")  # the refused request, logged by Chromium
    page.goto(f"{url}/#/train")
    page.select_option("#model", "ddpm")
    page.fill("#name", "ddpm-digits")
    page.click("#start")
    page.locator("#msg:not([hidden])").wait_for()
    assert "exists" in page.locator("#msg").inner_text()


def test_upload_an_image_and_translate_it(page, server, tmp_path):
    url, _ = server
    arr = np.zeros((24, 24), np.uint8)
    arr[4:20, 10:14] = 255  # a "1" larger than the model's 8 px: resized on the way in
    Image.fromarray(arr).save(tmp_path / "one.png")
    page.goto(f"{url}/#/apps?run=ddpm-digits&app=translate")
    page.locator('#app-tabs button[data-app="translate"].primary').wait_for()
    page.set_input_files("#upload", str(tmp_path / "one.png"))
    page.locator("#msg.info").wait_for()
    assert "uploaded 24×24" in page.locator("#msg").inner_text()
    page.locator("#strength").fill("0.3")
    page.click("#run-app")
    page.locator("#app-status[data-done='1']").wait_for()
    assert "strength 0.3" in page.locator("#app-status").inner_text()
    assert page.locator('.panel[data-title="output"] img').count() == 1

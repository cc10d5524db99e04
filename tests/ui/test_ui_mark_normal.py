"""“This was normal” in a real browser, with the shipped default detector (motion): the dashboard served by
`vlm-anomaly ui` on localhost (no credentials needed there), driven in headless Chromium.

Flow: train on two normal clips -> test a clip with an intruder (flagged) -> “This was normal” on its
incident -> Analyse again: no incident -> the Models page lists the addition -> undo -> the model is as
trained again. Then the Live page: an alert on a clip played as a stream, “This was normal” on it, undo.
Then “Add this video to the training set”, which says the model is not retrained by itself.
Screenshots go to test-artifacts/dashboard/normal-*.png.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.ui import test_ui_browser
from tests.ui.test_ui_browser import click, history_rows, idle, metric, nav, shot, text_shown, wait

#: the browser suite's fixtures: `vlm-anomaly ui` on a free localhost port with its own home (this
#: module gets its own), headless Chromium
server = test_ui_browser.server
browser = test_ui_browser.browser

pytestmark = pytest.mark.slow


def _tab(driver, title: str) -> None:
    tab = wait(driver, lambda d: d.find_element(By.XPATH, f"//*[@role='tab'][normalize-space(.)='{title}']"),
               what=f"tab-{title}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", tab)
    tab.click()


def _train(d, dash_clips) -> None:
    d.get(d.server_url)
    wait(d, lambda d: text_shown(d, "The training set is empty") and idle(d), 120, "normal-empty")
    up = wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "input[type='file']"), what="normal-uploader")[0]
    up.send_keys("\n".join(str(dash_clips[k]) for k in ("normal_a", "normal_b")))
    wait(d, lambda d: text_shown(d, "normal_b.mp4"), what="normal-uploaded")
    click(d, "Process and add to training set", "normal-process")
    wait(d, lambda d: text_shown(d, "Added 2 video(s) to the training set.") and idle(d), what="normal-added")
    name = wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Model name']"), what="name")
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys("house", Keys.ENTER)
    wait(d, idle, what="normal-idle-name")
    click(d, "Train model", "normal-train")
    # the motion default trains on a frame every 100 ms (more than the 24 frames sampled at 500 ms)
    wait(d, lambda d: text_shown(d, "house saved:") and text_shown(d, "frames from 2 video(s)"), what="normal-trained")


def _analyse(d, clip, *, shown: str | None = None) -> int:
    """Score ``clip`` on the Test page; ``shown``: a text the page shows before (the previous result's),
    which must be gone once the new result is in."""
    nav(d, "Test")
    if shown:
        wait(d, lambda d: text_shown(d, shown), what="normal-before-analyse")
    up = wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "input[type='file']"), what="normal-test-uploader")
    up[0].send_keys(str(clip))
    wait(d, lambda d: text_shown(d, clip.name), what="normal-test-uploaded")
    click(d, "Analyse", "normal-analyse")
    wait(d, lambda d: metric(d, "Anomalies") is not None and idle(d) and not (shown and text_shown(d, shown)),
         what="normal-scored")
    return int(metric(d, "Anomalies"))


def test_mark_normal_from_test_models_and_live_pages(server, browser, dash_clips, tmp_path):
    d = browser
    d.server_url = server
    _train(d, dash_clips)
    # the intruder is flagged by the model as trained
    assert _analyse(d, dash_clips["intruder"]) > 0
    wait(d, lambda d: text_shown(d, "Incident #1:"), what="normal-incident")
    assert not text_shown(d, "No incident at this threshold.")
    shot(d, "normal-01-flagged")

    # one click on the incident: learned as normal, with an undo
    click(d, "This was normal", "normal-mark-incident")
    wait(d, lambda d: text_shown(d, "as normal: model house recalibrated.") and idle(d), what="normal-learned")
    said = d.find_element(By.XPATH, "//*[contains(text(), 'as normal: model house recalibrated.')]").text
    assert said.startswith("Learned ") and "of incident #1" not in said and "intruder.mp4" in said, said
    assert enabled_undo(d)
    shot(d, "normal-02-learned")
    # the same file scored again: nothing flagged any more
    click(d, "Analyse again", "normal-rescore")
    wait(d, lambda d: text_shown(d, "No incident at this threshold.") and idle(d), what="normal-rescored")
    assert metric(d, "Anomalies") == "0"
    shot(d, "normal-03-rescored")

    # the Models page lists what was added; undo removes it
    nav(d, "Models")
    _tab(d, "Marked normal")
    wait(d, lambda d: text_shown(d, "Footage marked normal after training (1)"), what="normal-listed")
    rows = additions_rows(d)
    assert len(rows) == 1 and rows[0]["video"] == "intruder.mp4" and int(rows[0]["frames"]) > 0, rows
    assert rows[0]["range"].endswith(" s") and "Test page" in rows[0]["note"], rows
    shot(d, "normal-04-models")
    click(d, "Undo #1", "normal-undo")
    wait(d, lambda d: text_shown(d, "Undone: intruder.mp4") and idle(d), what="normal-undone")
    _tab(d, "Marked normal")
    wait(d, lambda d: text_shown(d, "Nothing was marked normal for model house"), what="normal-none-left")
    shot(d, "normal-05-undone")
    # undone for real: the Test page says so, and the same clip is flagged again
    assert _analyse(d, dash_clips["intruder"], shown="Undone: model house no longer counts that footage") > 0

    # the Live page: an alert on a clip played as a stream, "This was normal" on it, then undo
    nav(d, "Live")
    wait(d, lambda d: text_shown(d, "Take a picture with the browser camera") and idle(d), what="normal-live")
    d.find_element(By.XPATH, "//label[.//*[normalize-space(.)='Continuous (server-side source)']]").click()
    src = wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Source']"), what="normal-source")
    src.send_keys(str(dash_clips["intruder"]), Keys.ENTER)
    wait(d, idle, what="normal-idle-source")
    click(d, "Start monitoring", "normal-start-live")
    wait(d, lambda d: text_shown(d, "Source ended at") and history_rows(d), what="normal-live-ended")
    assert text_shown(d, "Alert #1:")
    click(d, "This was normal", "normal-mark-alert")
    wait(d, lambda d: text_shown(d, "of alert #1") and text_shown(d, "as normal: model house recalibrated."),
         what="normal-alert-learned")
    shot(d, "normal-06-live-learned")
    nav(d, "Models")
    _tab(d, "Marked normal")
    wait(d, lambda d: text_shown(d, "Footage marked normal after training (1)"), what="normal-alert-listed")
    assert "alert #1" in additions_rows(d)[0]["note"]
    shot(d, "normal-07-models-alert")
    click(d, "Undo #1", "normal-undo-alert")
    wait(d, lambda d: text_shown(d, "Undone: intruder.mp4") and idle(d), what="normal-alert-undone")
    _tab(d, "Marked normal")
    wait(d, lambda d: text_shown(d, "Nothing was marked normal for model house"), what="normal-none-left-2")

    # "Add this video to the training set" (the Test page keeps its result): added, and the page says the
    # model is not retrained by itself; retraining is one more click
    nav(d, "Test")
    click(d, "Add this video to the training set", "normal-add-ts")
    wait(d, lambda d: text_shown(d, "Added intruder.mp4 (12 frames) to the training set: now 3 video(s)") and idle(d),
         what="normal-ts-added")
    assert text_shown(d, "Model house has not changed")
    shot(d, "normal-08-training-set")
    click(d, "Retrain house now", "normal-retrain")
    # 3 videos now (the training set's own 12-frame count is at 500 ms; the default trains every 100 ms)
    wait(d, lambda d: text_shown(d, "Model house retrained:") and text_shown(d, "frames from 3 video(s)"),
         what="normal-retrained")


def enabled_undo(d) -> bool:
    return enabled_button_text(d, "Undo")


def enabled_button_text(d, label: str) -> bool:
    return any(b.is_enabled() for b in d.find_elements(By.XPATH, f"//button[normalize-space(.)='{label}']"))


def additions_rows(d) -> list[dict[str, str]]:
    """The Models page's table of additions (the visible one) as rows of header -> cell text."""
    # None while the table is not rendered yet, so that wait() tries again
    table = wait(d, lambda d: next((t for t in d.find_elements(By.CSS_SELECTOR, "[data-testid='stTable'] table")
                                    if t.is_displayed()), None), what="normal-additions-table")
    heads = [h.text.strip() for h in table.find_elements(By.CSS_SELECTOR, "thead th")]
    return [dict(zip(heads, [c.text.strip() for c in tr.find_elements(By.CSS_SELECTOR, "th, td")]))
            for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

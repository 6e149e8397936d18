"""The report of a real profile's plan, served by a real `peft-planner serve`, rendered in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.store import create_store_engine, init_db
from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.gains.registry import fill_gains
from tests.app.service_helpers import store_profile
from tests.browser import browser_missing, chromium
from tests.servers import serving
from tests.tiny import TINY_BERT

pytestmark = pytest.mark.slow

OPTIONS = {"ranks": [4, 8], "bottlenecks": [16], "prompt_lengths": [5], "batch_size": 1, "seq_len": 8,
           "repeats": 1, "warmup": 0, "threads": 1}


def test_a_real_profiles_plan_report_renders_in_chromium(tmp_path: Path) -> None:
    missing = browser_missing()
    if missing:
        pytest.skip(missing)
    from selenium.webdriver.common.by import By

    profile, _ = fill_gains(profile_model(ModelSpec(config=TINY_BERT), ProfileOptions(**OPTIONS)), "prior")
    db = str(tmp_path / "service.db")
    init_db(create_store_engine(db))
    profile_id = store_profile(db, profile)
    with serving(db) as url:
        created = httpx.post(f"{url}/v1/plans", json={"profile_id": profile_id,
                                                      "budget": {"params": "2%", "flops": "60%"}})
        assert created.status_code == 201, created.text
        plan = created.json()
        problem = httpx.get(f"{url}/v1/plans/{plan['id']}/problem").json()
        with chromium() as browser:
            browser.get(url + plan["report_url"])
            assert browser.title == f"Plan {plan['id']}"
            assert browser.save_screenshot(str(tmp_path / "report.png"))
            cells = browser.find_elements(By.CSS_SELECTOR, "svg.heatmap g.cell")
            bars = {b.get_attribute("data-axis"): b for b in browser.find_elements(By.CSS_SELECTOR, "svg.budgets g.bar")}
            placed = [(c.get_attribute("data-id"), c.get_attribute("data-row")) for c in cells]
            drawn = [c.rect for c in cells]
            numbers = {axis: bar.find_element(By.CSS_SELECTOR, "text.numbers").text for axis, bar in bars.items()}
            widths = {axis: [r.rect["width"] for r in bar.find_elements(By.TAG_NAME, "rect")]
                      for axis, bar in bars.items()}
            used = {axis: float(bar.get_attribute("data-used")) for axis, bar in bars.items()}
            marked = browser.find_elements(By.CSS_SELECTOR, "svg.frontier g.marker")
    selected = plan["plan"]["selected"]
    assert len(selected) >= 5 and sorted(i for i, _ in placed) == sorted(selected)
    layers = {c.id: c.layer for c in profile.candidates}
    assert all(row == ("no layer" if layers[i] is None else f"layer {layers[i]}") for i, row in placed)
    assert all(r["width"] > 20 and r["height"] > 20 for r in drawn)  # drawn, not just present
    assert used == {axis: plan["plan"][axis] for axis in ("params", "flops", "memory_bytes", "latency_ms")}
    budget = problem["budget"]
    assert numbers["params"].startswith(f"{plan['plan']['params']:,} of {budget['params']:,.0f}")
    for axis in ("params", "flops"):  # the filled part of each bar is the used fraction of its track
        track, fill = widths[axis]
        assert fill / track == pytest.approx(plan["plan"][axis] / budget[axis], abs=0.01)
    assert "no cap" in numbers["memory_bytes"] and len(widths["memory_bytes"]) == 1
    assert len(marked) == 1
    png = (tmp_path / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1280 and len(png) > 20_000

"""`cnnlab explain --html`: the page's numbers are the layer's, and the page works in a real
browser (Debian's Chromium, driven by Selenium, from file:// with no network)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.analysis.explain import KINDS, make_config, run_example
from cnnlab.analysis.explain.compute import _LAYER_CLASSES
from cnnlab.analysis.explain.page import MAX_CELLS, page_data, read_page_data, render_page, save_html
from cnnlab.analysis.explain.pictures import cells
from cnnlab.analysis.textfmt import fmt_number
from cnnlab.cli import main

from ..browser import ARTIFACTS, severe_console_messages


def _rerun(example: dict) -> np.ndarray:
    """The page's own input and weights through a fresh float64 layer of the same configuration."""
    c = example["config"]
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in c.items() if k != "input_size"}
    if example["kind"] == "depthwise":
        kwargs.pop("filters")
    if example["kind"] not in ("depthwise", "separable"):
        kwargs.pop("depth_multiplier")
    if example["kind"] != "transpose":
        kwargs.pop("output_padding")
    layer = _LAYER_CLASSES[example["kind"]](**kwargs, dtype=torch.float64)
    layer.set_keras_weights([np.asarray(w, dtype=np.float64) for w in example["weights"].values()])
    x = torch.tensor(example["input"], dtype=torch.float64).permute(2, 0, 1)[None]
    with torch.no_grad():
        return layer(x)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("kind", KINDS)
def test_page_numbers_are_the_layers(kind):
    rng = np.random.default_rng(10 + KINDS.index(kind))
    for strides in (1, 2, 3):
        for padding in ("valid", "same"):
            options = dict(
                input_size=(int(rng.integers(3, 7)), int(rng.integers(3, 7))),
                strides=strides,
                padding=padding,
                in_channels=int(rng.integers(1, 4)),
                seed=int(rng.integers(1000)),
            )
            if kind in ("depthwise", "separable"):
                options["depth_multiplier"] = int(rng.integers(1, 3))
            if kind != "depthwise":
                options["filters"] = int(rng.integers(1, 3))
            run = run_example(make_config(kind, **options))
            page = read_page_data(render_page([run]))["examples"][0]
            out = _rerun(page)
            np.testing.assert_allclose(np.asarray(page["output"]), out, rtol=0, atol=1e-12)
            x = np.asarray(page["input"])
            assert [tuple(c["cell"]) for c in page["cells"]] == list(cells(run))
            for c in page["cells"]:
                assert c["value"] == pytest.approx(out[tuple(c["cell"])], rel=1e-12, abs=1e-12)
                parts = []
                for step in c["steps"]:
                    for s in step["sums"]:
                        assert sum(v * w for v, w, *_ in s["terms"]) == pytest.approx(s["result"], rel=1e-12, abs=1e-12)
                        if s["channel"] is not None:  # a window: each term reads the input cell it names
                            for v, _w, iy, ix, _i, _j in s["terms"]:
                                assert v == x[iy, ix, s["channel"]]
                            for v, _w, iy, ix, _i, _j in s["padding"]:  # padding taps fall outside the input
                                assert v == 0 and not (0 <= iy < x.shape[0] and 0 <= ix < x.shape[1])
                    parts = [s["result"] for s in step["sums"]]
                assert sum(c["parts"]) + (c["bias"] or 0) == pytest.approx(c["value"], rel=1e-12, abs=1e-12)
                assert parts and sum(parts) == pytest.approx(sum(c["parts"]), rel=1e-12, abs=1e-12)


def test_page_is_self_contained_and_holds_the_four_examples(tmp_path):
    run = run_example(make_config("conv2d", input_size=(4, 5), strides=2, padding="same"))
    path = save_html(run, tmp_path / "page.html")
    text = path.read_text()
    assert "http://" not in text and "https://" not in text and "src=" not in text  # nothing fetched
    data = read_page_data(text)
    assert [e["name"] for e in data["examples"]] == [
        "conv2d: custom",
        *(f"{k}: the article 001 example" for k in KINDS),
    ]
    transpose = data["examples"][-1]
    flat = np.asarray(transpose["output"]).reshape(-1)
    np.testing.assert_allclose(flat, transpose["article"], atol=1e-9)  # article 001's printed numbers


def test_page_refuses_an_example_too_large_to_write_out():
    run = run_example(make_config("conv2d", input_size=(70, 70), filters=1, in_channels=1))
    assert run.output.size > MAX_CELLS
    with pytest.raises(ValueError, match="smaller `input_size` or fewer `filters`"):
        page_data(run)


def test_cli_html_opens_on_the_asked_cell(tmp_path, capsys):
    assert main(["explain", "separable", "--cell", "0,0,1", "--html", str(tmp_path / "s.html")]) == 0
    assert "wrote" in capsys.readouterr().out
    data = read_page_data((tmp_path / "s.html").read_text())
    assert data["examples"][0]["cells"][data["start"]]["cell"] == [0, 0, 1]
    assert len(data["examples"]) == 4  # the article's separable example is not repeated


# ------------------------------------------------------------------------- in a real browser
def _shown(driver) -> tuple[str, set[tuple[int, int, int]], str]:
    """(cell, highlighted input cells as (c, y, x), the total line) as the page shows them."""
    from selenium.webdriver.common.by import By

    read = {
        tuple(int(td.get_attribute(f"data-{k}")) for k in "cyx")
        for td in driver.find_elements(By.CSS_SELECTOR, "#inputs td.read")
    }
    return (
        driver.find_element(By.TAG_NAME, "body").get_attribute("data-cell"),
        read,
        driver.find_element(By.ID, "total").text,
    )


def _expected(cell: dict) -> set[tuple[int, int, int]]:
    return {
        (s["channel"], t[2], t[3])
        for step in cell["steps"]
        for s in step["sums"]
        if s["channel"] is not None
        for t in s["terms"] + s["padding"]
    }


def test_page_in_chromium(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    path = save_html(
        run_example(make_config("conv2d", input_size=(4, 5), strides=2, padding="same")), tmp_path / "p.html"
    )
    data = read_page_data(path.read_text())["examples"]
    browser.get(path.as_uri())
    assert severe_console_messages(browser) == []

    first = _shown(browser)
    assert first[0] == "0,0,0" and first[1] == _expected(data[0]["cells"][0])
    assert first[2].endswith(f"= {fmt_number(data[0]['cells'][0]['value'])}")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    second = _shown(browser)
    assert second[0] == ",".join(map(str, data[0]["cells"][1]["cell"]))
    assert second[1] == _expected(data[0]["cells"][1])  # (0, 0, 1): the same window, the next filter
    assert second[2] != first[2] and second[2].endswith(f"= {fmt_number(data[0]['cells'][1]['value'])}")
    for _ in range(2):
        browser.find_element(By.ID, "next").click()
    third = _shown(browser)
    assert third[0] == ",".join(map(str, data[0]["cells"][3]["cell"])) == "0,1,0"
    assert third[1] == _expected(data[0]["cells"][3]) and third[1] != first[1]  # the window moved
    assert third[2].endswith(f"= {fmt_number(data[0]['cells'][3]['value'])}")

    # a click on an output cell goes to it: the bottom-right cell of the last channel
    last = data[0]["cells"][-1]["cell"]
    browser.find_element(
        By.CSS_SELECTOR, f'#outputs td[data-y="{last[0]}"][data-x="{last[1]}"][data-c="{last[2]}"]'
    ).click()
    assert _shown(browser)[0] == ",".join(map(str, last))
    assert browser.find_element(By.ID, "check").get_attribute("class") == "ok"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "explain-page-conv2d.png"))

    # switch to the article's transpose: its cells, the crop of 'same' told, the sums checked
    Select(browser.find_element(By.ID, "example")).select_by_visible_text("transpose: the article 001 example")
    t = data[-1]
    assert _shown(browser)[0] == "0,0,0" and _shown(browser)[1] == _expected(t["cells"][0])
    for _ in range(1, len(t["cells"])):
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
        assert browser.find_element(By.ID, "check").get_attribute("class") == "ok"
    cell, read, total = _shown(browser)
    assert cell == ",".join(map(str, t["cells"][-1]["cell"])) and read == _expected(t["cells"][-1])
    assert browser.save_screenshot(str(ARTIFACTS / "explain-page-transpose.png"))
    assert severe_console_messages(browser) == []

"""`cnnlab inspect --html`: the page holds the model's own numbers, stays small, and works in a real
browser (Debian's Chromium under Selenium, from file:// with no network): a click on a stage shows
its maps, a click on a cell shows the window and a sum equal to the value shown (and to
`Inspection.explain`), the class menu changes the heat map."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.analysis.inspection import inspect
from cnnlab.analysis.inspection.page import decode, page_data, read_page_data

from ..browser import ARTIFACTS, severe_console_messages


@pytest.fixture(scope="module")
def densenet(photo):
    return inspect(cnnlab.train.load_run("docs/weights/densenet-case3.pt", "cpu"), photo(32, 32, seed=4))


@pytest.fixture(scope="module")
def three_kinds(photo):
    """A random net with a Conv2D, a DepthwiseConv2D and a SeparableConv2D unit per stage."""
    torch.manual_seed(2)
    model = cnnlab.create_model("modulenet_cifar", layers=("conv", "depthwise", "separable"), widths=(6, 8))
    return inspect(model, photo(20, 20, seed=5), image_size=16)


def test_page_numbers_are_the_models(densenet, tmp_path):
    path = densenet.save_html(tmp_path / "page.html")
    text = path.read_text()
    assert "http://" not in text and "https://" not in text and "src=" not in text  # nothing fetched
    data = read_page_data(text)
    assert data["left_out"] == []
    assert data["cam"]["classes"][0] == densenet.predicted and len(data["cam"]["classes"]) == 10
    assert [s["name"] for s in data["stages"]] == [s.name for s in densenet.stages]
    for entry, stage in zip(data["stages"], densenet.stages):
        maps = densenet.features[stage.name]
        assert entry["channels"] == densenet.channel_order(stage.name)[:12].tolist()
        shown = decode(entry["maps"], "u1").reshape(len(entry["channels"]), *maps.shape[1:])
        expected = (maps[entry["channels"]] - entry["lo"]) / (entry["hi"] - entry["lo"]) * 255
        assert np.abs(shown - expected).max() <= 0.5 + 1e-6  # 8-bit, one scale per stage
        if stage.unit is not None:
            e = entry["explain"]
            conv = densenet.by_name[stage.unit.conv]
            read = decode(data["tensors"][e["input"]]["data"], "<f4").reshape(data["tensors"][e["input"]]["shape"])
            assert np.array_equal(read, conv.input[0].numpy())  # the activations the convolution read
            values = decode(e["values"], "<f4").reshape(-1, *maps.shape[1:])
            assert np.array_equal(values, maps[entry["channels"]])  # the model's own outputs
    cam = decode(data["cam"]["maps"][0], "u1").reshape(32, 32)
    assert np.abs(cam - densenet.gradcam() * 255).max() <= 0.5 + 1e-6


def test_page_sizes(densenet, tmp_path, photo):
    """densenet_cifar on a 32x32 image under 3 MB with every cell explained; resnet18 at 224x224
    under 8 MB, the units whose inputs are largest left out (and listed on the page)."""
    small = densenet.save_html(tmp_path / "densenet.html").stat().st_size
    torch.manual_seed(0)
    resnet = inspect("resnet18", photo(224, 224, seed=6))
    path = resnet.save_html(tmp_path / "resnet18.html")
    large = path.stat().st_size
    left_out = read_page_data(path.read_text())["left_out"]
    print(
        f"page sizes: densenet_cifar 32x32 {small:,} bytes; resnet18 224x224 {large:,} bytes, "
        f"cells not explained in the page: {', '.join(left_out)}"
    )
    assert small < 3_000_000 and large < 8_000_000
    assert left_out and "stem.conv" in left_out and len(left_out) < len(resnet.units) / 2


def test_page_holds_hostile_names_as_data(tmp_path, photo):
    torch.manual_seed(0)
    model = cnnlab.create_model("convtype_cifar", num_classes=2, widths=(4, 8))
    names = ["</script><script>alert(1)</script>", "<!--<script>"]
    text = inspect(model, photo(16, 16), classes=names, image_size=16).save_html(tmp_path / "p.html").read_text()
    assert "<script>alert" not in text and "<!--<script>" not in text
    assert read_page_data(text)["classes"] == names


def test_page_options_are_checked(densenet):
    with pytest.raises(ValueError, match="max_channels must be a positive int, got 0"):
        page_data(densenet, max_channels=0)
    few = page_data(densenet, max_channels=2, cam_classes=3, explain_bytes=0)
    assert all(len(s["channels"]) <= 2 for s in few["stages"]) and len(few["cam"]["classes"]) == 3
    assert few["tensors"] == {} and len(few["left_out"]) == len(densenet.units)


# ------------------------------------------------------------------------- in a real browser
def _open(driver, path):
    from selenium.webdriver.common.by import By

    driver.get(path.as_uri())
    body = driver.find_element(By.TAG_NAME, "body")
    for _ in range(100):
        if body.get_attribute("data-ready"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"the page never finished loading: {severe_console_messages(driver)}")


def _click_cell(driver, index: int, stage: dict, j: int, y: int, x: int) -> dict:
    """Show stage ``index``, click cell (y, x) of its ``j``-th map; what the page says about it."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f'#stages li[data-stage="{index}"]').click()
    canvases = driver.find_elements(By.CSS_SELECTOR, "#maps canvas")
    assert len(canvases) == len(stage["channels"])  # the stage's maps are shown
    canvas = canvases[j]
    _, h, w = stage["shape"]
    width, height = canvas.size["width"] - 2, canvas.size["height"] - 2  # inside the 1-px border
    dx, dy = (x + 0.5) * width / w - width / 2, (y + 0.5) * height / h - height / 2
    ActionChains(driver).move_to_element_with_offset(canvas, int(dx), int(dy)).click().perform()
    body = driver.find_element(By.TAG_NAME, "body")
    return {k: body.get_attribute(f"data-{k}") for k in ("cell", "conv", "value", "model", "stage")} | {
        "check": driver.find_element(By.ID, "check").get_attribute("class"),
        "total": driver.find_element(By.ID, "total").text,
        "reads": len(driver.find_elements(By.CSS_SELECTOR, "#window td.read")),
        "pads": len(driver.find_elements(By.CSS_SELECTOR, "#window td.pad")),
    }


def _check_cells(driver, inspection, data, picks) -> list[dict]:
    seen = []
    for index, j, y, x in picks:
        stage = data["stages"][index]
        c = stage["channels"][j]
        shown = _click_cell(driver, index, stage, j, y, x)
        e = inspection.explain(stage["explain"]["conv"], (y, x, c))
        assert shown["cell"] == f"{index}:{y},{x},{c}" and shown["check"] == "ok", shown
        assert float(shown["conv"]) == pytest.approx(e.conv.value, rel=1e-12, abs=1e-15)  # explain's own sum
        assert float(shown["value"]) == pytest.approx(e.value, rel=1e-12, abs=1e-15)
        assert float(shown["model"]) == inspection.features[stage["name"]][c, y, x]  # the value shown
        assert shown["reads"] >= 1 and shown["total"].startswith("= ")
        seen.append(shown)
    return seen


def test_page_in_chromium(browser, densenet, three_kinds, tmp_path):  # noqa: F811 (the fixture)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    path = densenet.save_html(tmp_path / "densenet.html")
    data = read_page_data(path.read_text())
    _open(browser, path)
    assert severe_console_messages(browser) == []
    units = [i for i, s in enumerate(data["stages"]) if s["explain"]]
    assert data["stages"][units[1]]["title"] == "stages.0.layer0.conv1 → stages.0.layer0.bn2 → stages.0.layer0.act2"
    _check_cells(browser, densenet, data, [(units[1], 0, 0, 0), (units[1], 3, 31, 30), (units[-1], 1, 3, 2)])
    assert browser.find_element(By.ID, "stage-title").text == data["stages"][units[-1]]["title"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "inspect-page-densenet.png"))

    concat = next(i for i, s in enumerate(data["stages"]) if s["sources"])
    browser.find_element(By.CSS_SELECTOR, f'#stages li[data-stage="{concat}"]').click()
    assert "A concatenation of: channels 0..15 from stem.conv" in browser.find_element(By.ID, "stage-info").text

    cam = browser.find_element(By.ID, "cam")
    before, shown = cam.screenshot_as_png, browser.find_element(By.TAG_NAME, "body").get_attribute("data-cam-class")
    assert shown == densenet.classes[densenet.predicted]
    Select(browser.find_element(By.ID, "cam-class")).select_by_index(3)
    other = densenet.classes[data["cam"]["classes"][3]]
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-cam-class") == other != shown
    assert cam.screenshot_as_png != before  # the heat map changed
    assert severe_console_messages(browser) == []

    path = three_kinds.save_html(tmp_path / "kinds.html")
    data = read_page_data(path.read_text())
    _open(browser, path)
    kinds: dict[str, int] = {}
    for i, s in enumerate(data["stages"]):
        if s["explain"]:
            kinds.setdefault(s["explain"]["kind"], i)  # the first stage's units: 16x16
    assert set(kinds) == {"conv2d", "depthwise", "separable"}
    picks = [(i, 1, 15, 0) for i in kinds.values()] + [(i, 0, 7, 8) for i in kinds.values()]
    _check_cells(browser, three_kinds, data, picks)
    assert browser.save_screenshot(str(ARTIFACTS / "inspect-page-separable.png"))
    assert severe_console_messages(browser) == []


def test_asymmetric_same_stride_2_in_chromium(browser, tmp_path, photo):  # noqa: F811 (the fixture)
    """resnet18's 3x3/2 'same' on an even map pads only the bottom row and right column: the
    bottom-right cell's window reaches the padding, the top-left one's does not."""
    torch.manual_seed(3)
    inspection = inspect("resnet18", photo(64, 64, seed=7), image_size=64)
    path = inspection.save_html(tmp_path / "r18.html")
    data = read_page_data(path.read_text())
    _open(browser, path)
    index = next(
        i for i, s in enumerate(data["stages"]) if s["explain"] and s["explain"]["conv"] == "stages.1.block0.conv1"
    )
    assert data["stages"][index]["explain"]["pads"] == [[0, 1], [0, 1]]
    corner, origin = _check_cells(browser, inspection, data, [(index, 0, 7, 7), (index, 2, 0, 0)])
    assert corner["pads"] == 5 and origin["pads"] == 0  # the bottom row and right column of the 3x3 window
    assert severe_console_messages(browser) == []

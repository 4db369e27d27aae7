"""`cnnlab summary MODEL --html`: the ledger as a sortable table and the cost per stage, offline."""

from __future__ import annotations

from cnnlab.analysis.summary import model_summary
from cnnlab.analysis.summary_page import read_page_data, save_html, stage_costs
from cnnlab.cli import main

from ..browser import ARTIFACTS, severe_console_messages


def test_stages_split_the_cost_and_add_up():
    s = model_summary("densenet_cifar", (3, 32, 32))
    stages = stage_costs(s)
    assert sum(st.params for st in stages) == sum(r.params for r in s.rows)
    assert sum(st.macs for st in stages) == s.macs
    assert sum(st.rows for st in stages) == len(s.rows)
    assert max(st.macs for st in stages) <= 0.6 * s.macs  # no stage swallows the model
    names = [st.name for st in stages]
    assert names == ["stem", "stages.0", "stages.1", "stages.2", "stages.3", "head"]  # model order, blocks apart
    assert [st.name for st in stage_costs(s, depth=1)] == ["stem", "stages", "head"]


def test_cli_writes_a_self_contained_page(tmp_path, capsys):
    assert main(["summary", "mobilenet_v2", "--input", "3,96,96", "--html", str(tmp_path / "m.html")]) == 0
    assert "wrote" in capsys.readouterr().out
    text = (tmp_path / "m.html").read_text()
    assert "http://" not in text and "https://" not in text and "src=" not in text
    data = read_page_data(text)
    s = model_summary("mobilenet_v2", (3, 96, 96))
    assert [r["name"] for r in data["rows"]] == [r.name for r in s.rows]
    assert data["macs"] == s.macs and sum(st["macs"] for st in data["stages"]) == s.macs


def test_summary_page_in_chromium(browser, tmp_path):
    from selenium.webdriver.common.by import By

    s = model_summary("densenet_cifar", (3, 32, 32))
    browser.get(save_html(s, tmp_path / "d.html").as_uri())
    assert severe_console_messages(browser) == []
    shown = lambda: [tr.get_attribute("data-name") for tr in browser.find_elements(By.CSS_SELECTOR, "#ledger tbody tr")]  # noqa: E731
    assert shown() == [r.name for r in s.rows]  # model order first
    macs = browser.find_element(By.CSS_SELECTOR, 'th[data-col="6"]')
    macs.click()  # largest first
    by_macs = sorted(s.rows, key=lambda r: -r.macs)
    assert [s.rows[[r.name for r in s.rows].index(n)].macs for n in shown()] == [r.macs for r in by_macs]
    assert macs.get_attribute("aria-sort") == "descending"
    macs.click()
    assert macs.get_attribute("aria-sort") == "ascending" and shown()[-1] == by_macs[0].name
    browser.find_element(By.CSS_SELECTOR, 'th[data-col="1"]').click()
    assert shown() == sorted(r.name for r in s.rows)
    bars = browser.find_elements(By.CSS_SELECTOR, "#stages .bars")
    assert [b.get_attribute("data-stage") for b in bars] == [st.name for st in stage_costs(s)]
    widths = [b.find_element(By.CLASS_NAME, "bar-macs").size["width"] for b in bars]
    heaviest = max(range(len(bars)), key=lambda i: stage_costs(s)[i].macs)
    assert widths[heaviest] == max(widths) and min(widths) >= 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "summary-page-densenet.png"))
    assert severe_console_messages(browser) == []

"""Fixtures shared by the data tests."""

from __future__ import annotations

import pytest

from cnnlab.data import cifar


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """A private cache per test, and no network: any download attempt fails the test."""
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # keep ../shared/datasets out of the search path

    def no_network(*args, **kwargs):
        raise AssertionError("a local source was given: no network access allowed")

    monkeypatch.setattr(cifar.urllib.request, "urlopen", no_network)
    return tmp_path / "cache"

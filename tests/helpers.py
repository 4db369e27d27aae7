"""Helpers shared by test modules across areas (fixtures live in the conftest.py files)."""

from __future__ import annotations

import pytest

from cnnlab.cli import main


def fails(capsys, argv: list[str]) -> str:
    """Run the command; it must exit 2 with one line on stderr. Returns that line."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]

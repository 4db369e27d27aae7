"""The library speaks Python, the command line speaks flags (issue 27): a library error names the
parameter (`data_dir`, `stream=False`) and the ``cnnlab`` command says it as its flag
(``cnnlab.cli.flags``). The library knows no path of this checkout: the command looks in
``../shared/datasets`` by itself, the library only where ``$CNNLAB_DATA_PATH`` says."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from cnnlab.cli import main
from cnnlab.cli.flags import in_flags
from cnnlab.data import DataError, cifar, load_dataset

from .fake_cifar import fake_cifar10
from .images import image_folder

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"
FLAG = re.compile(r"(?<![\w-])--[a-z]")  # a command-line flag such as --data-dir
# library modules whose messages still name flags while other work on them is in progress; the
# lead words them after (issue 27). Empty this set as they are done.
PENDING: set[str] = set()


def messages(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module that are not docstrings, with their lines."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def library_modules() -> list[tuple[str, Path]]:
    return [
        (p.relative_to(SRC).as_posix(), p) for p in sorted(SRC.rglob("*.py")) if p.relative_to(SRC).parts[0] != "cli"
    ]


def test_no_library_message_names_a_flag():
    found = [
        f"{name}:{line}: {text[:90]!r}"
        for name, path in library_modules()
        if name not in PENDING
        for line, text in messages(path)
        if FLAG.search(text)
    ]
    assert not found, "library messages that name command-line flags:\n" + "\n".join(found)
    for name in PENDING:  # the list shrinks, never names what is done
        assert any(FLAG.search(text) for _, text in messages(SRC / name)), f"{name} is done: drop it from PENDING"


def test_no_checkout_path_in_the_library():
    found = [name for name, path in library_modules() if re.search(r"shared\W+datasets", path.read_text())]
    assert not found, f"the library names this checkout's ../shared/datasets in {found}"


@pytest.mark.parametrize(
    "library, command",
    [
        ("`sync_bn=True` needs CUDA", "--sync-bn needs CUDA"),
        ("drop `stream=False`; or `stream=True`", "drop --no-stream; or --stream"),
        (
            "pass `dataset='cifar100'` (e.g. `dataset='my photos'`)",
            "pass --dataset cifar100 (e.g. --dataset 'my photos')",
        ),
        ("`data_dir='/tmp/x'` does not exist; pass `data_dir`", "--data-dir /tmp/x does not exist; pass --data-dir"),
        ("another `out_dir` or `study_name`; `epochs` may grow", "another --out or --study; --epochs may grow"),
        ("`model_args` and `not_a_parameter`, `cnnlab models`", "--arg and `not_a_parameter`, `cnnlab models`"),
        (
            "flavour (`model_args={'conv_bias': False, 'bn_eps': 1e-05}`)",
            "flavour (--arg conv_bias=False --arg bn_eps=1e-05)",
        ),
        ("`device='cuda'` asked for; use `device='cpu'`", "--device cuda asked for; use --device cpu"),
        ("`weights='my w.pt'`: no such file", "--weights 'my w.pt': no such file"),
        ("`png` must name a .png file", "--plot must name a .png file"),  # Comparison.save(png): compare --plot
        ("or `save_png` for one cell", "or --png for one cell"),  # explain --png
        ("a weights file from `save_weights`", "a weights file from cnnlab export --weights"),
    ],
)
def test_the_cli_says_parameters_as_flags(library, command):
    assert in_flags(library) == command


@pytest.fixture()
def checkout(tmp_path, monkeypatch):
    """A checkout's directory with CIFAR-10 (a look-alike) at ../shared/datasets, no network."""
    work = tmp_path / "cnnlab"
    work.mkdir()
    fake_cifar10(tmp_path / "shared" / "datasets" / "cifar10")
    monkeypatch.chdir(work)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_DATA_PATH", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("no download: the data is at ../shared/datasets")

    monkeypatch.setattr(cifar.urllib.request, "urlopen", no_network)
    return tmp_path


def test_the_library_looks_only_where_it_is_told(checkout, monkeypatch):
    with pytest.raises(DataError, match=r"no cifar10 found in .*downloading is off; pass `data_dir`") as error:
        load_dataset("cifar10", download=False)
    assert "shared" not in str(error.value) and "--" not in str(error.value)
    places = [str(checkout / "nowhere"), str(checkout / "shared" / "datasets")]
    monkeypatch.setenv("CNNLAB_DATA_PATH", os.pathsep.join(places))
    assert len(load_dataset("cifar10", download=False)["train"].classes) == 10


def test_the_command_looks_in_the_checkout(checkout, capsys):
    small = [
        "--arg",
        "widths=4,8",
        "--epochs",
        "1",
        "--limit-train",
        "20",
        "--limit-val",
        "10",
        "--batch-size",
        "10",
        "--device",
        "cpu",
        "--quiet",
    ]
    assert main(["train", "convtype_cifar", *small, "--out", "run"]) == 0
    assert "CNNLAB_DATA_PATH" not in os.environ  # the command's own setting, gone after it
    assert "cifar10" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(["train", "convtype_cifar", *small, "--out", "run2", "--data-dir", "nowhere"])
    assert stop.value.code == 2
    assert "error: --data-dir nowhere does not exist" in capsys.readouterr().err


SHAPES = ["--data-dir", "shapes", "--arg", "widths=4,8", "--epochs", "1", "--batch-size", "8", "--quiet"]


@pytest.mark.parametrize(
    "argv, says",
    [
        (
            ["train", "convtype_cifar", *SHAPES, "--dataset", "shapes", "--device", "cuda"],
            "error: --device cuda asked for, but PyTorch sees no CUDA device; use --device cpu",
        ),
        (["compare", "convtype_cifar", "--plot", "x.jpg"], "error: --plot must name a .png file, got 'x.jpg'"),
        (
            ["explain", "conv2d", "--input-size", "300", "--in-channels", "16", "--filters", "16"],
            "choose a smaller --input-size, --in-channels or --filters",
        ),
        (
            ["explain", "conv2d", "--input-size", "70", "--in-channels", "1", "--filters", "2", "--html", "x.html"],
            "choose a smaller --input-size or fewer --filters",
        ),
        (
            ["explain", "conv2d", "--input-size", "60", "--in-channels", "1", "--filters", "3", "--gif", "x.gif"],
            "choose a smaller example (--input-size, --filters), or --png for one cell",
        ),
        (["finetune", "convtype_cifar", *SHAPES, "--weights", "none.pt"], "error: --weights none.pt: no such file"),
        (["finetune", "convtype_cifar", *SHAPES, "--weights", "w.txt"], "error: --weights w.txt: unknown file type"),
    ],
    ids=["device", "compare", "explain-numbers", "explain-page", "explain-gif", "weights-missing", "weights-type"],
)
def test_the_command_names_its_flags(tmp_path, monkeypatch, capsys, argv, says):
    """What the library says in parameters, each command's one-line error says in its flags."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)  # --device cuda asks for what is not there
    image_folder(tmp_path / "shapes", per_class=4, splits=("train", "test"))
    (tmp_path / "w.txt").write_text("not weights")
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and says in err, err
    assert "`" not in err  # every parameter said as its flag


def test_the_explanation_says_where_the_rest_is(capsys):
    """A matrix group cut short says where all of it is: ``to_dict()`` in Python, --json for the command."""
    from cnnlab.analysis.explain import explain, format_text

    e = explain("conv2d", in_channels=5, filters=4)
    assert "... and 8 more (all of them with to_dict())" in format_text(e)
    assert "... and 8 more (all of them with --json)" in format_text(e, everything="--json")
    assert main(["explain", "conv2d", "--in-channels", "5", "--filters", "4"]) == 0
    assert "... and 8 more (all of them with --json)" in capsys.readouterr().out

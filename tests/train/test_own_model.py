"""A run trained with ``fit`` on a model that is not in cnnlab's registry can be evaluated,
predicted and exported: the run records its classes, image size and model class, and the Python
API takes the model object to load the weights into."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.data import DataConfig
from cnnlab.train import TrainConfig, fit
from cnnlab.train.evaluation import evaluate_run
from cnnlab.train.prediction import predict_images
from cnnlab.train.rundir import load_run

from ..images import image_folder


class Own(nn.Module):
    """A model of one's own: nothing of cnnlab's registry."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture()
def own_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "shapes", splits=("train", "test"))
    data = DataConfig("shapes", data_dir=str(root))
    torch.manual_seed(0)
    fit(
        Own(),
        data.load(),
        TrainConfig(epochs=2, batch_size=8, lr=1e-2, device="cpu", precise_bn=0),
        tmp_path / "run",
        quiet=True,
    )
    return tmp_path / "run", data, root


def test_a_run_of_a_model_outside_the_registry_is_evaluated_predicted_and_exported(own_run, tmp_path):
    out, data, root = own_run
    with pytest.raises(ValueError, match=r"not in cnnlab's registry: pass model=<a Own"):
        load_run(out)  # today: "does not say which model it holds", and no way to load it
    run = load_run(out, device="cpu", model=Own())
    assert run.classes == ["dark", "light"] and run.image_size == (8, 8)
    assert run.info["model_class"].endswith("test_own_model.Own")
    result = evaluate_run(out, data, device="cpu", model=Own())
    history_acc = __import__("json").loads((out / "history.json").read_text())["summary"]["best_val_acc"]
    assert result["accuracy"] == pytest.approx(history_acc)
    image = next((root / "test" / "light").iterdir())
    (prediction,) = predict_images(out, [image], device="cpu", top=2, model=Own())
    assert sorted(name for name, _ in prediction["top"]) == ["dark", "light"]
    assert sum(p for _, p in prediction["top"]) == pytest.approx(1.0, abs=1e-5)
    pytest.importorskip("onnxruntime")
    from cnnlab.export import export_onnx

    report = export_onnx(out, tmp_path / "own.onnx", model=Own())
    assert report.path.is_file() and report.input_shape == (3, 8, 8)

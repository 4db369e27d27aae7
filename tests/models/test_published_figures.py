"""Issue #3's table in one place: every published total/trainable figure and depth, read off
``cnnlab.summary`` (models built on the meta device: shapes only, so this runs in seconds).
The family test files check the same models against Keras/torchvision builds in more detail."""

import pytest

from cnnlab.analysis.summary import model_summary

DENSE_CIFAR = [
    (16, (1, 2, 4, 3), 255_046, 251_614, 25),
    (32, (1, 2, 4, 3), 505_200, 501_004, 25),
    (16, (2, 4, 8, 5), 599_536, 591_412, 43),
    (16, (3, 6, 12, 8), 1_104_186, 1_089_114, 63),
    (16, (6, 12, 24, 16), 3_316_848, 3_271_120, 121),
]

# (name, kwargs, total, trainable, depth); None = not published / not asserted here
FIGURES = [
    *[("densenet_cifar", {"growth_rate": k, "blocks": b}, t, tr, d) for k, b, t, tr, d in DENSE_CIFAR],
    ("convtype_cifar", {"conv": "conv"}, 1_598_730, None, 10),
    ("convtype_cifar", {"conv": "depthwise"}, 58_506, None, 10),
    ("convtype_cifar", {"conv": "separable"}, 230_538, None, 10),
    ("modulenet_cifar", {"layers": ("separable", "separable", "depthwise")}, 236_810, None, 13),
    ("vgg16", {}, 138_357_544, 138_357_544, 16),
    ("googlenet", {}, 6_998_552, None, 22),
    ("resnet50", {}, 25_636_712, 25_583_592, 50),
    ("resnet50", {"conv_bias": False}, None, 25_557_032, 50),
    ("resnet18", {"conv_bias": False}, None, 11_689_512, 18),
    ("resnet34", {"conv_bias": False}, None, 21_797_672, 34),
    ("resnet101", {"conv_bias": False}, None, 44_549_160, 101),
    ("resnet152", {"conv_bias": False}, None, 60_192_808, 152),
    ("mobilenet", {}, 4_253_864, 4_231_976, 28),
    ("mobilenet", {"conv_bias": True}, 4_264_808, None, 28),
    ("mobilenet_v2", {}, 3_538_984, 3_504_872, None),
    ("mobilenet_v3_small", {}, 2_554_968, None, None),
    ("mobilenet_v3_large", {}, 5_507_432, None, None),
    ("densenet121", {}, 8_062_504, 7_978_856, 121),
    ("densenet169", {}, 14_307_880, 14_149_480, 169),
    ("densenet201", {}, 20_242_984, 20_013_928, 201),
    # blocks (6, 12, 64, 48): 1 + 2*130 + 3 transitions + fc = 265 weight layers; the name says 264
    ("densenet264", {}, 33_736_232, 33_337_704, 265),
    ("densenet_bc", {"depth": 100, "growth_rate": 12}, 793_150, 769_162, 100),
    ("xception", {}, 22_910_480, 22_855_952, 37),
]


@pytest.mark.parametrize(
    "name, kwargs, total, trainable, depth", FIGURES, ids=lambda v: str(v) if isinstance(v, str) else None
)
def test_published_figure(name, kwargs, total, trainable, depth):
    s = model_summary(name, **kwargs)
    if total is not None:
        assert s.total_params == total
    if trainable is not None:
        assert s.trainable_params == trainable
    if depth is not None:
        assert s.depth == depth


@pytest.mark.parametrize("name, gmacs", [("resnet50", 4.1), ("mobilenet", 0.569), ("vgg16", 15.5)])
def test_macs_papers_quote(name, gmacs):
    assert model_summary(name).macs / 1e9 == pytest.approx(gmacs, rel=0.02)

"""GoogLeNet: article 004's Keras model (count, depth, shapes and outputs with the same weights)
and torchvision's BN flavour (count, and outputs against a functional torchvision-style forward)."""

import pytest
import torch
import torch.nn.functional as F

import cnnlab
from cnnlab.analysis.summary import summary
from cnnlab.layers import Conv2D

from .counts import keras_param_counts

# kwargs, total (Keras convention), trainable, depth
COUNTS = [
    ({}, 6_998_552, 6_998_552, 22),  # article 004's model.summary()
    ({"batch_norm": True}, 6_639_464, 6_624_904, 22),  # torchvision googlenet (trainable) + BN statistics
]


@pytest.mark.parametrize("kwargs, total, trainable, depth", COUNTS)
def test_counts_and_depth(kwargs, total, trainable, depth):
    model = cnnlab.create_model("googlenet", **kwargs)
    assert keras_param_counts(model) == (total, trainable)
    s = summary(model, (3, 224, 224))
    assert (s.total_params, s.trainable_params, s.depth) == (total, trainable, depth)


def article_googlenet(input_shape, n_classes, convs):
    """Article 004's code verbatim, except: no softmax (we compare logits) and every Conv2D is
    also appended to ``convs`` in creation order."""
    from keras import layers, models

    def conv(*args, **kwargs):
        convs.append(layers.Conv2D(*args, **kwargs))
        return convs[-1]

    def inception_block(x, f):
        t1 = conv(f[0], 1, activation="relu")(x)
        t2 = conv(f[1], 1, activation="relu")(x)
        t2 = conv(f[2], 3, padding="same", activation="relu")(t2)
        t3 = conv(f[3], 1, activation="relu")(x)
        t3 = conv(f[4], 5, padding="same", activation="relu")(t3)
        t4 = layers.MaxPool2D(3, 1, padding="same")(x)
        t4 = conv(f[5], 1, activation="relu")(t4)
        return layers.concatenate([t1, t2, t3, t4])

    input = layers.Input(input_shape)
    x = conv(64, 7, strides=2, padding="same", activation="relu")(input)
    x = layers.MaxPool2D(3, strides=2, padding="same")(x)
    x = conv(64, 1, activation="relu")(x)
    x = conv(192, 3, padding="same", activation="relu")(x)
    x = layers.MaxPool2D(3, strides=2)(x)
    x = inception_block(x, [64, 96, 128, 16, 32, 32])
    x = inception_block(x, [128, 128, 192, 32, 96, 64])
    x = layers.MaxPool2D(3, strides=2, padding="same")(x)
    x = inception_block(x, [192, 96, 208, 16, 48, 64])
    x = inception_block(x, [160, 112, 224, 24, 64, 64])
    x = inception_block(x, [128, 128, 256, 24, 64, 64])
    x = inception_block(x, [112, 144, 288, 32, 64, 64])
    x = inception_block(x, [256, 160, 320, 32, 128, 128])
    x = layers.MaxPool2D(3, strides=2, padding="same")(x)
    x = inception_block(x, [256, 160, 320, 32, 128, 128])
    x = inception_block(x, [384, 192, 384, 48, 128, 128])
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.4)(x)
    dense = layers.Dense(n_classes)
    return models.Model(input, dense(x)), dense


def test_matches_article_keras_model():
    """Same parameter count, same feature-map sizes, same logits once the Keras weights are copied in."""
    import keras

    convs = []
    peer, dense = article_googlenet((224, 224, 3), 1000, convs)
    model = cnnlab.create_model("googlenet").eval()
    assert peer.count_params() == keras_param_counts(model)[0]
    concat_sizes = [tuple(layer.output.shape[1:]) for layer in peer.layers if type(layer).__name__ == "Concatenate"]
    ours = [m for m in model.modules() if isinstance(m, Conv2D)]
    assert len(ours) == len(convs) == 3 + 9 * 6
    for layer, conv in zip(convs, ours):
        conv.set_keras_weights([keras.ops.convert_to_numpy(w) for w in layer.get_weights()])
    kernel, bias = dense.get_weights()
    with torch.no_grad():
        model.head.fc.weight.copy_(torch.as_tensor(kernel).T)
        model.head.fc.bias.copy_(torch.as_tensor(bias))
    x = torch.rand(2, 3, 224, 224)
    sizes = []
    modules = [m for n, m in model.named_modules() if ".inception" in n and n.count(".") == 2]
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:]))) for m in modules]
    with torch.no_grad():
        ours_logits = model(x)
    for h in hooks:
        h.remove()
    assert [(h, w, c) for c, h, w in sizes] == concat_sizes
    keras_logits = keras.ops.convert_to_numpy(peer(x.permute(0, 2, 3, 1).numpy(), training=False))
    scale = ours_logits.abs().max()  # Keras's default init leaves small logits without BatchNorm
    assert scale > 0
    torch.testing.assert_close(ours_logits / scale, torch.as_tensor(keras_logits) / scale, rtol=1e-4, atol=1e-5)


def torchvision_forward(model, x):
    """torchvision's GoogLeNet.forward (eval, transform_input=False, no aux) written with its own
    PyTorch ops -- symmetric conv padding k // 2, ceil_mode pools -- on ``model``'s weights."""

    def basic(unit, x):
        conv, bn = unit.conv, unit.bn
        x = F.conv2d(x, conv.weight, None, conv.strides, conv.kernel_size[0] // 2)
        return F.relu(F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps))

    def inception(m, x):
        b4 = F.max_pool2d(x, 3, 1, 1, ceil_mode=True)
        return torch.cat(
            [
                basic(m.branch1, x),
                basic(m.branch2[1], basic(m.branch2[0], x)),
                basic(m.branch3[1], basic(m.branch3[0], x)),
                basic(m.branch4[1], b4),
            ],
            1,
        )

    x = F.max_pool2d(basic(model.stem.conv1, x), 3, 2, ceil_mode=True)
    x = basic(model.stages[0].conv3, basic(model.stages[0].conv2, x))
    for s, pool in ((1, (3, 2)), (2, (3, 2)), (3, (2, 2))):
        x = F.max_pool2d(x, *pool, ceil_mode=True)
        for name, m in model.stages[s].named_children():
            if name.startswith("inception"):
                x = inception(m, x)
    return model.head.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def test_batch_norm_flavour_is_torchvision():
    torch.manual_seed(0)
    model = cnnlab.create_model("googlenet", batch_norm=True)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    convs = [m for m in model.modules() if isinstance(m, Conv2D)]
    assert len(bns) == len(convs) == 57 and all(m.eps == 1e-3 for m in bns)
    assert all(c.bias is None for c in convs)
    assert model.stages[1].inception3a.branch3[1].conv.kernel_size == (3, 3)  # torchvision's "5x5" branch
    assert model.head.drop.p == 0.2
    with torch.no_grad():  # non-trivial BN statistics
        for bn in bns:
            bn.running_mean.uniform_(-0.1, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
    model.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ours, reference = model(x), torchvision_forward(model, x)
    scale = ours.abs().max()
    torch.testing.assert_close(ours / scale, reference / scale, rtol=1e-4, atol=1e-5)
    assert [f.reduction for f in model.feature_info] == [4, 8, 16, 32]


def test_structure_and_features():
    model = cnnlab.create_model("googlenet")
    names = set(dict(model.named_modules()))
    assert {
        "stem.conv1.conv",
        "stem.pool1",
        "stages.0.conv3.conv",
        "stages.1.pool2",
        "stages.2.inception4e.branch3.1.conv",
        "stages.3.inception5b.branch4.0",
        "head.fc",
    } <= names
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert model.head.drop.p == 0.4
    assert [(f.channels, f.reduction) for f in model.feature_info] == [(192, 4), (480, 8), (832, 16), (1024, 32)]
    assert cnnlab.create_model("googlenet", dropout=0.0).head.drop.__class__ is torch.nn.Identity


@pytest.mark.parametrize("batch_norm, sizes", [(False, [32, 15, 8, 4]), (True, [32, 16, 8, 4])])
def test_cifar_stem(batch_norm, sizes):
    model = cnnlab.create_model("googlenet", num_classes=10, stem="cifar", batch_norm=batch_norm).eval()
    assert model.stem.conv1.conv.kernel_size == (3, 3) and model.stem.conv1.conv.strides == (1, 1)
    assert "pool1" not in dict(model.stem.named_children())
    got = []
    hooks = [
        model.get_submodule(f.module).register_forward_hook(lambda m, i, o: got.append(o.shape[-1]))
        for f in model.feature_info
    ]
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    for h in hooks:
        h.remove()
    assert got == sizes
    assert [f.reduction for f in model.feature_info] == [1, 2, 4, 8]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_norm": "yes"}, r"batch_norm must be True .* or False .*, got 'yes'"),
        ({"dropout": 1.0}, r"dropout must be None .* or a number in \[0, 1\), got 1.0"),
        ({"dropout": -0.2}, r"dropout must be None .*, got -0.2"),
        ({"stem": "small"}, r"stem must be 'imagenet'.*got 'small'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnnlab.create_model("googlenet", **kwargs)

"""The Keras peer for benchmarks/training.py: article 000's own DenseNetSimple code on
Keras 3 with the TensorFlow backend, fed by ImageDataGenerator exactly as the article does.

TensorFlow is not a cnnlab dependency; install it in a separate environment to run this:

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow scipy
    KERAS_BACKEND=tensorflow /tmp/tfenv/bin/python benchmarks/keras_tf_peer.py [--images 2560]

It prints images/s of the second epoch (the first includes graph tracing), same data size,
batch 128 and fp32 as benchmarks/training.py, to be read side by side with its table.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402


def densenet_simple(growth_rate=16, compression=0.5, blocks=(1, 2, 4, 3)):
    """Article 000's DenseNetSimple.make_model, unchanged in substance."""
    from keras.layers import (
        Activation,
        AveragePooling2D,
        BatchNormalization,
        Concatenate,
        Conv2D,
        Dense,
        GlobalAveragePooling2D,
        Input,
    )
    from keras.models import Model

    def dense_block(x, n, nb):
        for _ in range(nb):
            main = x
            x = Activation("relu")(BatchNormalization()(x))
            x = Conv2D(128, (1, 1))(x)
            x = Activation("relu")(BatchNormalization()(x))
            x = Conv2D(growth_rate, (3, 3), padding="same")(x)
            x = Concatenate()([main, x])
            n += growth_rate
        return x, n

    inputs = Input(shape=(32, 32, 3))
    n = 16
    x = Conv2D(n, (1, 1))(inputs)
    for i, nb in enumerate(blocks):
        if i:
            n = int(n * compression)
            x = AveragePooling2D((2, 2))(Conv2D(n, (1, 1))(x))
        x, n = dense_block(x, n, nb)
    outputs = Dense(10, activation="softmax")(GlobalAveragePooling2D()(x))
    return Model(inputs, outputs)


def main() -> None:
    import keras

    try:
        from keras.preprocessing.image import ImageDataGenerator
    except ImportError:
        from keras.src.legacy.preprocessing.image import ImageDataGenerator
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2560)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 10, args.images), 10)
    model = densenet_simple()
    assert model.count_params() == 255_046, model.count_params()
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy", metrics=["acc"])
    datagen = ImageDataGenerator(
        rescale=1.0 / 255,
        rotation_range=20,
        width_shift_range=0.2,
        height_shift_range=0.2,
        channel_shift_range=50,
        horizontal_flip=True,
    )
    times = []
    for _ in range(2):
        start = time.perf_counter()
        model.fit(datagen.flow(x, y, batch_size=128), steps_per_epoch=args.images // 128, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    print(
        f"keras {keras.__version__} ({keras.backend.backend()}): densenet_cifar (article code, ImageDataGenerator) "
        f"{args.images / times[1]:.0f} img/s (epoch 1 incl. tracing: {args.images / times[0]:.0f} img/s)"
    )


if __name__ == "__main__":
    main()

import os

# Keras is our reference implementation; it must run on its torch backend. Set before any
# test module imports keras.
os.environ.setdefault("KERAS_BACKEND", "torch")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One intra-op thread per xdist worker: `make test` runs one worker per core, and
    # oversubscribed cores make every convolution slower.
    import torch

    torch.set_num_threads(1)

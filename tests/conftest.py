import atexit
import os
import shutil
import tempfile

# Keras is our reference implementation; it must run on its torch backend. Set before any
# test module imports keras.
os.environ.setdefault("KERAS_BACKEND", "torch")

if not os.environ.get("CNNLAB_DATA"):
    # Decoded datasets go to a cache of this test session (inherited by the xdist workers), not
    # the user's ~/.cache/cnnlab; removed when the session ends.
    os.environ["CNNLAB_DATA"] = tempfile.mkdtemp(prefix="cnnlab-test-cache-")
    atexit.register(shutil.rmtree, os.environ["CNNLAB_DATA"], True)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One intra-op thread per xdist worker: `make test` runs one worker per core, and
    # oversubscribed cores make every convolution slower.
    import torch

    torch.set_num_threads(1)

import os

# Keras is our reference implementation; it must run on its torch backend. Set before any
# test module imports keras.
os.environ.setdefault("KERAS_BACKEND", "torch")

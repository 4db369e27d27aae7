"""The library's parameters in the command line's words.

A library message names a parameter between backquotes, as Python code: `data_dir`,
`stream=False`, `dataset='cifar100'` (a value is a Python literal, or a word). The command's
one-line error says each one it has a flag for as that flag -- ``--data-dir``, ``--no-stream``,
``--dataset cifar100``, ``--arg a=1`` for `model_args={'a': 1}` -- and leaves any other backquoted
text as it is.

    in_flags("`sync_bn=True` needs CUDA")   # '--sync-bn needs CUDA'
"""

from __future__ import annotations

import ast
import re
import shlex

# parameter -> the flag that sets it (where the two differ in more than "_" -> "-", the table says so)
PARAM_FLAGS = {
    "data_dir": "--data-dir",
    "dataset": "--dataset",
    "val_split": "--val-split",
    "image_size": "--image-size",
    "limit_train": "--limit-train",
    "limit_val": "--limit-val",
    "stream": "--stream",
    "cache_size": "--cache-size",
    "epochs": "--epochs",
    "resume": "--resume",
    "overwrite": "--overwrite",
    "out": "--out",
    "out_dir": "--out",
    "device": "--device",
    "sync_bn": "--sync-bn",
    "tensorboard": "--tensorboard",
    "weights": "--weights",
    "freeze_epochs": "--freeze-epochs",
    "model_args": "--arg",
    "storage": "--storage",
    "study_name": "--study",
    "trials": "--trials",
    "input_size": "--input-size",
    "in_channels": "--in-channels",
    "filters": "--filters",
    # the library's ways that one command does as a flag (or as a command)
    "png": "--plot",  # Comparison.save(png): cnnlab compare --plot
    "save_png": "--png",  # explain's picture of one cell: cnnlab explain --png
    "save_weights": "cnnlab export --weights",
}
MENTION = re.compile(r"`([a-z_][a-z0-9_]*)(?:=([^`]*))?`")


def in_flags(message: str) -> str:
    """``message`` with every backquoted parameter the command has a flag for written as that flag."""
    return MENTION.sub(_as_flag, message)


def _as_flag(mention: re.Match) -> str:
    name, value = mention.group(1), mention.group(2)
    flag = PARAM_FLAGS.get(name)
    if flag is None:
        return mention.group(0)
    if value is None:
        return flag
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass  # a word standing for the value, e.g. `data_dir=PATH`
    if value is True:
        return flag
    if value is False:
        return "--no-" + flag[2:]
    if isinstance(value, (tuple, list)):
        value = ",".join(map(str, value))
    if isinstance(value, dict):  # keywords: `model_args={'a': 1}` -> --arg a=1, one flag each
        return " ".join(f"{flag} {shlex.quote(f'{k}={v}')}" for k, v in value.items())
    return f"{flag} {shlex.quote(str(value))}"

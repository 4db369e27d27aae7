"""``cnnlab predict``: the most likely classes of images with a trained run.

cnnlab predict runs/r18 cat.jpg ship.png            # top-5 of each
cnnlab predict runs/r18 photos/ --top-k 1 --json    # every image in a folder, as JSON
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import options

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top-K classes of images (files or folders) with a trained run")
    p.add_argument(
        "run_path",
        metavar="RUN_DIR_OR_CHECKPOINT",
        help="a run directory (its best.pt), a checkpoint or a weights file",
    )
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE_OR_FOLDER",
        help=f"image files, or folders: every image in them and below ({', '.join(IMAGE_SUFFIXES)}), in name order",
    )
    p.add_argument(
        "--top-k",
        type=options.at_least("--top-k", 1, "a positive number of classes"),
        default=5,
        metavar="K",
        help="classes shown per image, most likely first (default 5; at most the run's classes)",
    )
    p.add_argument(
        "--json", action="store_true", help="print a JSON list: per image its path and top classes with probabilities"
    )
    options.add_device(p)
    p.set_defaults(run=run)


def image_files(paths: list[str]) -> list[Path]:
    """The files given, with each folder replaced by the images in it (recursively, sorted)."""
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such image file or folder: {path}")
    return files


def run(args: argparse.Namespace) -> int:
    from ..train.prediction import predict_images

    results = predict_images(
        args.run_path, image_files(args.images), top=args.top_k, **options.given(device=args.device)
    )
    if args.json:
        print(
            json.dumps(
                [
                    {"image": r["image"], "top": [{"class": name, "probability": p} for name, p in r["top"]]}
                    for r in results
                ],
                indent=1,
            )
        )
        return 0
    for result in results:
        print(result["image"])
        for name, p in result["top"]:
            print(f"  {p:7.2%}  {name}")
    return 0

"""``cnnlab inspect``: what a trained network computes on real images, layer by layer.

cnnlab inspect docs/weights/densenet-case3.pt cat.png                 # top-5, stages, Grad-CAM layer
cnnlab inspect runs/r18 photo.jpg --html r18.html --class dog          # the offline page
cnnlab inspect resnet18 photo.jpg --png pictures/ --layer stages.2     # random weights, said so
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="what every layer of a model computes on images: feature maps, Grad-CAM, a page",
        description="MODEL is a run directory, a checkpoint or weights file (read as cnnlab evaluate "
        "reads it: the run's classes and evaluation view) or a zoo name (random weights).",
    )
    p.add_argument("model", metavar="MODEL", help="a run directory, a checkpoint or weights file, or a zoo model name")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument(
        "--top-k",
        type=options.at_least("--top-k", 1, "a positive number of classes"),
        default=5,
        metavar="K",
        help="classes shown per image, most likely first (default 5)",
    )
    p.add_argument(
        "--layer",
        default=None,
        metavar="NAME",
        help="the module Grad-CAM looks at, by its name in the model (default: the last convolutional stage)",
    )
    p.add_argument(
        "--class",
        dest="target",
        default=None,
        metavar="NAME",
        help="the class Grad-CAM explains, by name or index (default: the predicted one)",
    )
    p.add_argument(
        "--png",
        default=None,
        metavar="DIR",
        help="write the pictures there: a grid of feature maps per "
        "stage, Grad-CAM over the image, the first layer's filters",
    )
    p.add_argument(
        "--html",
        default=None,
        metavar="FILE.html",
        help="write one offline page per image (several "
        "images: FILE-IMAGE.html): stages, maps, explained cells, Grad-CAM per class",
    )
    p.add_argument(
        "--channels",
        type=options.at_least("--channels", 1, "a positive number of channels"),
        default=None,
        metavar="N",
        help="feature maps per stage in the pictures (default 32) and the page (default 12)",
    )
    p.add_argument("--json", action="store_true", help="print the numbers as JSON (a list, one entry per image)")
    options.add_device(p)
    p.set_defaults(run=run)


def _output_path(path: str, image: str, many: bool) -> Path:
    out = Path(path)
    if not many:
        return out
    from ..analysis.inspection.pictures import file_part

    return out.with_name(f"{out.stem}-{file_part(Path(image).stem)}{out.suffix or '.html'}")


def run(args: argparse.Namespace) -> int:
    from ..analysis.inspection.gradcam import check_layer
    from ..analysis.inspection.source import class_index, read_image
    from ..train.inspection import inspect, load_subject

    who = load_subject(args.model, **options.given(device=args.device))
    if args.layer is not None:
        check_layer(who.model, args.layer)
    target = class_index(who.classes, args.target) if args.target is not None else None
    for image in args.images:  # every image readable before any work
        read_image(image, who.preprocess.channels)
    report, written = [], []
    many = len(args.images) > 1
    for image in args.images:
        inspection = inspect(who, image, layer=args.layer)
        chosen = target if target is not None else inspection.predicted
        if args.json:
            report.append(inspection.to_dict(args.top_k, chosen))
        else:
            print("\n".join(inspection.summary_lines(args.top_k)))
            print(
                f"  Grad-CAM of {inspection.classes[chosen]} at {inspection.layer}: "
                f"peak at {_peak(inspection.gradcam(chosen))} (row, column of the input)"
            )
        if args.png:
            written += inspection.save_pngs(args.png, target=chosen, **options.given(max_channels=args.channels))
        if args.html:
            page = _output_path(args.html, image, many)
            written.append(inspection.save_html(page, target=chosen, **options.given(max_channels=args.channels)))
    if args.json:
        print(json.dumps(report, indent=1))
    for path in written:  # on stderr under --json, which keeps stdout pure JSON
        print(f"wrote {path} ({path.stat().st_size:,} bytes)", file=sys.stderr if args.json else sys.stdout)
    return 0


def _peak(cam) -> tuple[int, int]:
    import numpy as np

    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return int(y), int(x)

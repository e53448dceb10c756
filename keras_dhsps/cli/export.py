"""``dhsps export MODEL -o DIR``: a SavedModel with raw-image endpoints."""

from __future__ import annotations

from keras_dhsps.cli.arguments import at_least
from keras_dhsps.config import RESIZE_MODES
from keras_dhsps.serving.export import export_saved_model
from keras_dhsps.serving.load import load_hasher
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import check_writable_output
from keras_dhsps.utils.outputs import check_output


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a run directory or a .keras file")
    parser.add_argument(
        "-o", "--output", required=True, help="SavedModel directory"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing directory"
    )
    parser.add_argument(
        "--resize",
        default="direct",
        choices=RESIZE_MODES,
        help="how the endpoints bring images to the model's size: the "
        "evaluation-time mode of the readers (default: direct)",
    )
    parser.add_argument(
        "--resize-to",
        type=at_least(1),
        nargs=2,
        default=(256, 256),
        metavar=("H", "W"),
        help="intermediate size of the cropping modes (default 256 256)",
    )
    parser.set_defaults(handler=run)


def run(args) -> None:
    check_output(
        args.output,
        kind="SavedModel",
        inputs=[args.model],
        overwrite=args.overwrite,
    )
    check_writable_output(args.output, directory=True)
    hasher = load_hasher(args.model)
    if hasher.model is None:
        raise DHSPSError(
            f"{args.model} is already a SavedModel; export a run directory "
            "or a .keras file"
        )
    metadata = export_saved_model(
        hasher.model,
        args.output,
        config=hasher.metadata.get("config"),
        overwrite=args.overwrite,
        resize=args.resize,
        resize_to=tuple(args.resize_to),
    )
    print(
        f"wrote {args.output} ({metadata['bits']} bits, input "
        f"{metadata['image_size'][0]}x{metadata['image_size'][1]}; endpoints "
        "serve, encode, encode_bytes, hasher, metadata)"
    )

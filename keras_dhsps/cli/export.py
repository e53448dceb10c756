"""``dhsps export MODEL -o OUT [--format savedmodel|onnx|litert]``: a
SavedModel with raw-image endpoints, or an ONNX or LiteRT file."""

from __future__ import annotations

from keras_dhsps.cli.arguments import at_least
from keras_dhsps.config import RESIZE_MODES
from keras_dhsps.serving.load import load_hasher
from keras_dhsps.serving.onnx import EXPORT_FORMATS
from keras_dhsps.utils.errors import DHSPSError
from keras_dhsps.utils.files import check_writable_output
from keras_dhsps.utils.outputs import check_output

#: What each format writes, as ``keras_dhsps.utils.outputs.KINDS`` names it.
OUTPUT_KINDS = {
    "savedmodel": "SavedModel",
    "onnx": "ONNX model",
    "litert": "LiteRT model",
}


def add_arguments(parser) -> None:
    parser.add_argument("model", help="a run directory or a .keras file")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="SavedModel directory, or the .onnx or .tflite file",
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
    parser.add_argument(
        "--format",
        default="savedmodel",
        choices=tuple(EXPORT_FORMATS),
        help="savedmodel (default; raw images of any size), onnx or litert "
        "(uint8 images at the model's size: the caller resizes and "
        "centre-crops; see docs/distributed.md)",
    )
    parser.set_defaults(handler=run)


def run(args) -> None:
    # The exporters need TensorFlow: imported here so that `dhsps export
    # --help` works on a machine without it.
    from keras_dhsps.serving.export import check_export_format
    from keras_dhsps.serving.export import export_hasher

    check_export_format(args.format, args.output)
    check_output(
        args.output,
        kind=OUTPUT_KINDS[args.format],
        inputs=[args.model],
        overwrite=args.overwrite,
    )
    check_writable_output(args.output, directory=args.format == "savedmodel")
    hasher = load_hasher(args.model)
    if hasher.model is None:
        kind = "a SavedModel" if hasher.kind == "saved_model" else "exported"
        raise DHSPSError(
            f"{args.model} is already {kind}; export a run directory "
            "or a .keras file"
        )
    metadata = export_hasher(
        hasher.model,
        args.output,
        format=args.format,
        config=hasher.metadata.get("config"),
        overwrite=args.overwrite,
        resize=args.resize,
        resize_to=tuple(args.resize_to),
    )
    size = f"{metadata['image_size'][0]}x{metadata['image_size'][1]}"
    if args.format == "savedmodel":
        print(
            f"wrote {args.output} ({metadata['bits']} bits, input {size}; "
            "endpoints serve, encode, encode_bytes, hasher, metadata)"
        )
    else:
        print(
            f"wrote {args.output} ({metadata['bits']} bits, input uint8 "
            f"{size}, resized with {args.resize} and centre-cropped by "
            "the caller)"
        )

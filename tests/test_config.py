import pytest

from pixtrans import PixtransError
from pixtrans.config import load_config
from pixtrans.nets import complete_specs


def test_facades_preset_has_paper_settings():
    cfg = load_config("pix2pix/facades", ["data.root=/x"])
    assert cfg.data.direction == "BtoA" and cfg.data.load_size == 286 and cfg.data.crop_size == 256
    assert cfg.model.G["name"] == "unet" and cfg.model.G["num_downs"] == 8 and cfg.model.G["dropout"] is True
    assert cfg.model.D == {"name": "patchgan", "ndf": 64, "n_layers": 3, "norm": "batch"}
    assert cfg.loss.gan_mode == "vanilla" and cfg.loss.lambda_l1 == 100
    assert (cfg.train.lr, cfg.train.beta1, cfg.train.epochs, cfg.train.epochs_decay) == (2e-4, 0.5, 100, 100)


def test_overrides_are_typed_and_nested():
    cfg = load_config(
        "pix2pix/facades", ["train.batch_size=4", "model.G.ngf=32", "train.lr=1e-3", "data.flip=false"]
    )
    assert cfg.train.batch_size == 4 and cfg.model.G["ngf"] == 32 and cfg.model.G["num_downs"] == 8
    assert cfg.train.lr == 1e-3 and cfg.data.flip is False


def test_base_preset_inherits():
    cfg = load_config("pix2pix/edges2shoes")
    assert cfg.train.batch_size == 4 and cfg.data.direction == "AtoB" and cfg.data.load_size == 286


def test_net_spec_filled_with_defaults():
    cfg = load_config(None, ["model.G={name: unet, ngf: 8}"])
    complete_specs(cfg)  # a builder step (nets), so config resolution stays torch-free
    assert cfg.model.G["num_downs"] == 8 and cfg.model.G["norm"] == "batch" and cfg.model.G["ngf"] == 8


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.batchsize=2", "did you mean 'batch_size'"),
        ("trian.lr=1", "did you mean 'train'"),
        ("train.batch_size=two", "'train.batch_size': expected an integer"),
        ("data.direction=AtoC", "did you mean 'AtoB'"),
        ("data.flip=maybe", "'data.flip': expected true/false"),
        ("data.crop_size=512", "data.load_size"),
        ("model.G.name=unett", "did you mean 'unet'"),
        ("train", "must look like key.sub=value"),
    ],
)
def test_bad_overrides_fail_with_named_key(override, fragment):
    with pytest.raises(PixtransError) as e:
        complete_specs(load_config("pix2pix/facades", [override]))
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_missing_preset_lists_presets(tmp_path):
    with pytest.raises(PixtransError, match="pix2pix/facades"):
        load_config("pix2pix/facade")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(PixtransError, match="not valid YAML"):
        load_config(str(bad))


def test_on_off_choices_survive_yaml_booleans():
    # YAML 1.1 turns a bare off/on into False/True; the choice fields must still take them
    cfg = load_config("pix2pix/demo", ["train.amp=off", "train.channels_last=on"])
    assert cfg.train.amp == "off" and cfg.train.channels_last == "on"
    cfg = load_config("pix2pix/demo", ["train.channels_last=off"])
    assert cfg.train.channels_last == "off"


def test_command_line_values_are_read_by_the_field_type():
    # a text field keeps what was typed: YAML would give 83, a date and True
    cfg = load_config("pix2pix/demo", ["data.root=0123", "run_dir=2024-01-01", "data.val_split=on"])
    assert (cfg.data.root, cfg.run_dir, cfg.data.val_split) == ("0123", "2024-01-01", "on")
    cfg = load_config(
        "pix2pix/demo", ["train.lr=1e-3", "data.flip=off", "train.max_steps=1_000", "train.amp=off"]
    )
    assert (cfg.train.lr, cfg.data.flip, cfg.train.max_steps, cfg.train.amp) == (1e-3, False, 1000, "off")
    cfg = load_config("pix2pix/demo", ["model.G.ngf=16", "model.G.dropout=false", "train={epochs: 3}"])
    assert cfg.model.G["ngf"] == 16 and cfg.model.G["dropout"] is False and cfg.train.epochs == 3


def test_official_network_and_loss_names_are_aliases():
    cfg = load_config(None, ["model.G.name=unet_128", "model.D.name=basic", "loss.gan_mode=wgangp"])
    complete_specs(cfg)
    assert cfg.model.G["name"] == "unet" and cfg.model.G["num_downs"] == 7
    assert cfg.model.D["name"] == "patchgan" and cfg.model.D["n_layers"] == 3
    assert cfg.loss.gan_mode == "wgan-gp"
    cfg = load_config(None, ["model.G.name=resnet_6blocks", "model.D.name=pixel"])
    complete_specs(cfg)
    assert (cfg.model.G["name"], cfg.model.G["n_blocks"], cfg.model.D["name"]) == ("resnet", 6, "pixel")

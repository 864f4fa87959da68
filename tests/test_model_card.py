"""Self-describing exports: a model card in every export (updated when the run is evaluated), and
Translator.save_pretrained writing an export from_pretrained loads back to the same outputs."""

import torch
from conftest import tiny_overrides

from pixtrans.cli import main
from pixtrans.inference import Translator


def test_export_has_a_model_card_that_lists_the_evaluation(tmp_path, synth_root):
    run = tmp_path / "run"
    over = tiny_overrides(run, synth_root, **{"train.max_steps": 4, "license": "CC-BY-4.0"})
    assert main(["train", "pix2pix/demo", *over]) == 0
    card = (run / "export" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: pixtrans\nlicense: CC-BY-4.0\n")
    assert "pix2pix (pixtrans)" in card and "training steps: 4" in card
    assert "- command: `pixtrans train pix2pix/demo" in card and "train.max_steps=4" in card
    assert "Not evaluated yet" in card and "Translator.from_pretrained" in card
    assert main(["evaluate", str(run), "--split", "val", "--metrics", "l1,psnr"]) == 0
    card = (run / "export" / "README.md").read_text()
    assert "| val | eval | 2 | l1 |" in card and "| psnr |" in card and "Not evaluated yet" not in card


def test_save_pretrained_round_trips(tmp_path, synth_root):
    run = tmp_path / "run"
    assert main(["train", "pix2pix/demo", *tiny_overrides(run, synth_root, **{"train.max_steps": 2})]) == 0
    translator = Translator.from_pretrained(run)
    saved = translator.save_pretrained(tmp_path / "saved")
    again = Translator.from_pretrained(saved)
    x = torch.rand(3, 16, 24) * 2 - 1
    for mode in ("eval", "paper"):
        assert torch.equal(translator(x, mode=mode, seed=3), again(x, mode=mode, seed=3))
    assert again.info["source"]["kind"] == "save_pretrained" and (saved / "README.md").is_file()
    assert again.info["step"] == translator.info["step"] == 2


def test_a_readme_someone_else_wrote_is_kept(tmp_path, synth_root):
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "export" / "README.md").write_text("# my notes\n")
    assert main(["train", "pix2pix/demo", *tiny_overrides(run, synth_root, **{"train.max_steps": 2})]) == 0
    assert (run / "export" / "README.md").read_text() == "# my notes\n"
    assert (run / "export" / "config.json").is_file()

"""Adding a method is shown, not claimed: a toy method registered from this file alone (one
generator, an L1 loss) trains, exports, translates, evaluates and benches through the public
commands, with no edit to any pixtrans module."""

import json

import torch
from conftest import tiny_overrides
from PIL import Image

from pixtrans.cli import main
from pixtrans.methods import Method
from pixtrans.nets import build_generator, init_weights
from pixtrans.registry import METHODS


@METHODS.register("toy_l1")
class ToyL1(Method):
    """Regress the target from the input with one generator and an L1 loss."""

    phases = ("G",)

    def __init__(self, G: torch.nn.Module):
        super().__init__()
        self.G = G

    @classmethod
    def from_config(cls, cfg, input_nc: int, output_nc: int) -> "ToyL1":
        G = build_generator(cfg.model.G, input_nc=input_nc, output_nc=output_nc)
        return cls(init_weights(G, cfg.model.init, cfg.model.init_gain))

    def phase_nets(self, phase):
        return ["G"]

    def prepare(self, batch):
        return {"fake_b": self.G(batch["real_a"]), "real_b": batch["real_b"]}

    def losses(self, ctx, phase):
        return {"G/l1": (ctx["fake_b"] - ctx["real_b"]).abs().mean()}

    @torch.no_grad()
    def visuals(self, batch):
        return {"input": batch["real_a"], "output": self.G(batch["real_a"]), "target": batch["real_b"]}


def test_a_method_registered_outside_the_package_runs_through_every_command(tmp_path, synth_root, capsys):
    run = tmp_path / "run"
    over = tiny_overrides(run, synth_root, **{"method": "toy_l1", "train.max_steps": 4})
    assert main(["train", "pix2pix/demo", *over]) == 0
    info = json.loads((run / "export" / "config.json").read_text())
    assert info["method"] == "toy_l1" and list(info["generators"]) == ["G"]
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["step"] == 4 and "G/l1" in stats[-1]

    assert main(["export", str(run), str(tmp_path / "exported")]) == 0
    assert json.loads((tmp_path / "exported" / "config.json").read_text())["method"] == "toy_l1"

    Image.new("RGB", (23, 17), (200, 40, 90)).save(tmp_path / "in.png")
    assert (
        main(["translate", str(run), str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--mode", "eval"])
        == 0
    )
    assert Image.open(tmp_path / "out.png").size == (23, 17)

    capsys.readouterr()
    assert main(["evaluate", str(run), "--split", "val", "--metrics", "l1,psnr"]) == 0
    printed = capsys.readouterr().out
    assert "l1" in printed and "psnr" in printed
    assert json.loads((run / "eval" / "val" / "metrics.json").read_text())["method"] == "toy_l1"

    bench = tiny_overrides(tmp_path / "bench", synth_root, method="toy_l1")
    args = ["bench", "pix2pix/demo", *bench, "--steps", "2", "--warmup", "1", "--floor-seconds", "0.2"]
    assert main([*args, "--json", str(tmp_path / "bench.json")]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["config"]["method"] == "toy_l1" and result["train_step"]["step_time_median_s"] > 0

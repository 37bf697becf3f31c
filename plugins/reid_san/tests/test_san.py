"""SAN and SAN-PG: decoder absent at inference, loss weights, SA-Dec output, recipes end to end,
the ``san textures`` / ``san keypoint-textures`` commands and the AMSGrad optimiser."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import attrs
import numpy as np
import pytest
import torch
from PIL import Image
from reid_datasets import synthetic
from reid_san.generator import list_images, load_texture_generator, texture_l1
from reid_san.losses import (
    FeatureMapTripletLoss,
    SANCriterion,
    TextureReconstructionLoss,
    mean_squared_distances,
)
from reid_san.model import SADecoder, SAEncoder, TextureGenerator, decoder_blocks_for
from reid_san.recipe import SANConfig, SANPGConfig, SANPGRecipe, SANRecipe
from reid_san.textures import read_synthetic_textures

from reidcore.cli import main
from reidcore.engine import checkpoint
from reidcore.errors import DatasetError, ExperimentError
from reidcore.hookspecs import hookimpl
from reidcore.testing import registered_plugin, write_tiny_market

TINY_DATA = dict(num_train_ids=4, num_test_ids=2, num_cameras=2, images_per_camera=3,
                 height=64, width=32)
TINY = ["--backbone", "resnet18", "--pretrained", "none", "--height", "64", "--width", "32",
        "--texture-size", "32", "--batch-p", "2", "--batch-k", "2", "--iterations", "3",
        "--warmup-iterations", "1", "--milestones", "2", "--workers", "0", "--device", "cpu",
        "--no-progress", "--no-tensorboard", "--embed-batch-size", "16", "--log-every", "1"]


def tiny_cfg(cls=SANConfig, **kw):
    base = dict(backbone="resnet18", pretrained="none", height=64, width=32, texture_size=32)
    return cls(**{**base, **kw})


def has_decoder(module: torch.nn.Module) -> bool:
    return any(isinstance(m, SADecoder) for m in module.modules())


def decoder_keys(state: dict) -> list[str]:
    return [k for k in state if "decoder" in k]


# ------------------------------------------------------------------------------ recipe module


def test_recipe_module_imports_no_torch():
    code = "import reid_san.recipe, sys; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_defaults_follow_the_seed_command():
    cfg = SANRecipe().default_config()
    seed = {"optimizer": "amsgrad", "lr": 8e-4, "weight_decay": 5e-4, "batch_p": 16,
            "batch_k": 4, "height": 256, "width": 128, "backbone": "resnet50", "last_stride": 1,
            "embedding_dim": 512, "label_smoothing": 0.1, "margin": "0.3", "gamma": 0.5,
            "schedule": "multistep", "warmup_iterations": 20 * 115, "warmup_factor": 0.01,
            "iterations": 320 * 115, "texture_size": 256, "reconstruction_loss": "l1",
            "perceptual_margin": 0.3}
    for name, value in seed.items():
        assert getattr(cfg, name) == value, name
    # --stepsize 40 80 ... 280 epochs, counted after the 20 warm-up epochs
    assert cfg.milestones == tuple((20 + e) * 115 for e in (40, 80, 120, 160, 200, 240, 280))
    pg = SANPGRecipe().default_config()
    assert isinstance(pg, SANPGConfig) and pg.dataset == "synthetic-textures"
    assert (pg.id_weight, pg.triplet_weight, pg.perceptual_weight) == (0, 0, 0)
    assert pg.reconstruction_weight == 1
    for f in attrs.fields(SANPGConfig):
        assert f.metadata.get("help"), f.name
    assert SANConfig.from_json(cfg.to_json()) == cfg


def test_amsgrad_optimizer():
    from reidcore.engine.trainer import build_optimizer

    p = torch.nn.Parameter(torch.zeros(3))
    opt = build_optimizer(tiny_cfg(), [{"params": [p], "lr_factor": 0.5}])
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["amsgrad"] is True
    assert opt.param_groups[0]["lr"] == pytest.approx(4e-4)
    assert opt.defaults["weight_decay"] == 5e-4
    plain = build_optimizer(tiny_cfg(optimizer="adam"), [{"params": [p]}])
    assert plain.defaults["amsgrad"] is False
    with pytest.raises(ValueError, match="amsgrad"):
        build_optimizer(tiny_cfg(optimizer="rmsprop"), [{"params": [p]}])


# ------------------------------------------------------------------------------ model


def test_encoder_outputs_feature_map_only_in_training():
    torch.manual_seed(0)
    enc = SAEncoder("resnet18", "none", embedding_dim=16, num_classes=5, last_stride=1)
    x = torch.randn(4, 3, 64, 32)
    out = enc.train()(x)
    assert out["embedding"].shape == (4, 16) and out["logits"].shape == (4, 5)
    assert out["feature_map"].shape == (4, 512, 4, 2)  # stride 16 with last stride 1
    assert (out["embedding"] >= 0).all()  # fc512: Linear + BN + ReLU
    with torch.no_grad():
        assert set(enc.eval()(x)) == {"embedding"}


def test_decoder_blocks_for():
    assert decoder_blocks_for(16, 256) == 4  # ResNet-50 stride 16 at 256x128: the authors' 4
    assert decoder_blocks_for(8, 64) == 3
    assert decoder_blocks_for(4, 64) == 4
    assert decoder_blocks_for(64, 32) == 1  # at least one block
    assert decoder_blocks_for(1, 48) == 4  # 48 = 3 x 16: at most 4 halvings
    with pytest.raises(ValueError):
        decoder_blocks_for(0, 64)


def test_decoder_output_shape_range_and_features():
    torch.manual_seed(0)
    dec = SADecoder(64, texture_size=32, blocks=3, width=32)
    with torch.no_grad():
        out = dec(torch.randn(2, 64, 4, 2) * 50)  # large inputs: the sigmoid keeps [0, 1]
    assert out["texture"].shape == (2, 3, 32, 32) and out["texture"].dtype == torch.float32
    assert 0.0 <= float(out["texture"].min()) and float(out["texture"].max()) <= 1.0
    assert [tuple(f.shape) for f in out["features"]] == [(2, 16, 8, 8), (2, 16, 16, 16),
                                                          (2, 16, 32, 32)]
    with pytest.raises(ValueError, match="divisible"):
        SADecoder(64, texture_size=48, blocks=5)
    with pytest.raises(ValueError, match="feature map"):
        dec(torch.randn(2, 64))


def test_san_pg_generator_shape_and_range():
    recipe = SANPGRecipe()
    cfg = tiny_cfg(SANPGConfig)
    assert recipe.feature_map_shape(cfg) == (512, 4, 2)
    decoder = recipe.build_decoder(cfg)
    assert decoder.texture_size == 32 and len(decoder.ups) == 3  # 4 rows -> 32: 3 blocks
    gen = TextureGenerator(recipe.build_model(cfg, 0), decoder).eval()
    with torch.no_grad():
        tex = gen(torch.randn(3, 3, 64, 32))
    assert tex.shape == (3, 3, 32, 32) and tex.dtype == torch.float32
    assert 0.0 <= float(tex.min()) and float(tex.max()) <= 1.0


def test_decoder_is_absent_from_the_inference_model():
    recipe = SANRecipe()
    cfg = tiny_cfg()
    model = recipe.build_model(cfg, 4)
    criterion = recipe.build_criterion(cfg)
    assert not has_decoder(model) and decoder_keys(model.state_dict()) == []
    assert has_decoder(criterion) and decoder_keys(criterion.state_dict())
    # every trainable parameter of the decoder is the criterion's (the trainer optimises them)
    assert {id(p) for p in criterion.decoder.parameters()} <= {id(p) for p in criterion.parameters()}


# ------------------------------------------------------------------------------ losses


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pids = torch.tensor([0, 0, 1, 1, 2, 2])
    return {
        "embedding": torch.randn(6, 8, generator=g),
        "logits": torch.randn(6, 3, generator=g),
        "feature_map": torch.randn(6, 16, 4, 2, generator=g),
    }, pids, {"texture": torch.rand(6, 3, 16, 16, generator=g)}


def test_reconstruction_loss_is_l1_or_l2():
    pred, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    out = {"texture": pred, "target_texture": target}
    assert TextureReconstructionLoss("l1")(out, None).item() == pytest.approx(
        (pred - target).abs().mean().item(), rel=1e-6)
    assert TextureReconstructionLoss("l2")(out, None).item() == pytest.approx(
        (pred - target).square().mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        TextureReconstructionLoss()({"texture": pred, "target_texture": target[:, :, :4]}, None)
    with pytest.raises(ValueError, match="l1 or l2"):
        TextureReconstructionLoss("huber")


def test_feature_map_triplet_matches_a_direct_computation():
    g = torch.Generator().manual_seed(1)
    maps = [torch.randn(6, 2, 3, 3, generator=g), torch.randn(6, 1, 4, 4, generator=g)]
    pids = torch.tensor([0, 0, 1, 1, 2, 2])
    mse = torch.nn.MSELoss()
    expected = 0.0
    for m in maps:
        d = torch.tensor([[mse(m[i], m[j]).item() for j in range(6)] for i in range(6)])
        torch.testing.assert_close(mean_squared_distances(m), d, rtol=1e-4, atol=1e-5)
        hinges = []
        for a in range(6):
            pos = max(d[a, p] for p in range(6) if p != a and pids[p] == pids[a])
            neg = min(d[a, n] for n in range(6) if pids[n] != pids[a])
            hinges.append(max(float(pos - neg) + 0.3, 0.0))
        expected += sum(hinges) / 6
    loss = FeatureMapTripletLoss(0.3)({"decoder_features": maps}, pids)
    assert loss.item() == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="P×K"):
        FeatureMapTripletLoss()({"decoder_features": maps}, torch.arange(6))


def test_zero_weights_remove_terms_and_the_decoder():
    recipe = SANRecipe()
    outputs, pids, targets = _batch()
    # re-ID only: no decoder, no parameters, no targets needed
    crit = recipe.build_criterion(tiny_cfg(reconstruction_weight=0, perceptual_weight=0))
    assert crit.decoder is None and list(crit.parameters()) == []
    assert set(crit.weights) == {"id", "triplet"}
    loss, stats = crit(outputs, pids)
    assert "loss/reconstruction" not in stats and "loss/perceptual" not in stats
    assert stats["loss"] == pytest.approx(stats["loss/id"] + stats["loss/triplet"], rel=1e-5)
    # perceptual only on the decoder: a decoder but no reconstruction, so no texture targets
    crit = SANCriterion({"perceptual": (0.5, FeatureMapTripletLoss()),
                         "reconstruction": (0.0, TextureReconstructionLoss())},
                        SADecoder(16, 16, 2, 32))
    assert crit.decoder is not None and set(crit.weights) == {"perceptual"}
    loss, stats = crit(outputs, pids)
    assert loss.item() == pytest.approx(0.5 * stats["loss/perceptual"], rel=1e-5)
    # a decoder given but no decoder term: dropped
    crit = SANCriterion({"id": (1.0, torch.nn.Identity())}, SADecoder(16, 16, 2, 32))
    assert crit.decoder is None and list(crit.parameters()) == []
    # every term on: the total is the weighted sum
    crit = SANCriterion({"reconstruction": (2.0, TextureReconstructionLoss()),
                         "perceptual": (0.5, FeatureMapTripletLoss())}, SADecoder(16, 16, 2, 32))
    loss, stats = crit(outputs, pids, targets)
    assert loss.item() == pytest.approx(
        2.0 * stats["loss/reconstruction"] + 0.5 * stats["loss/perceptual"], rel=1e-5)
    with pytest.raises(KeyError, match="texture"):
        crit(outputs, pids)
    # id weight 0: the model has no classifier
    assert recipe.build_model(tiny_cfg(id_weight=0), 4).classifier is None
    with pytest.raises(ValueError, match="every SAN loss weight is 0"):
        recipe.build_criterion(tiny_cfg(id_weight=0, triplet_weight=0, reconstruction_weight=0,
                                        perceptual_weight=0))
    with pytest.raises(ValueError, match="reconstruction-weight must be >= 0"):
        recipe.build_criterion(tiny_cfg(reconstruction_weight=-1))


def test_decoder_runs_in_the_feature_maps_precision():
    outputs, pids, targets = _batch()
    crit = SANCriterion({"reconstruction": (1.0, TextureReconstructionLoss()),
                         "perceptual": (1.0, FeatureMapTripletLoss())}, SADecoder(16, 16, 2, 32))
    fmap = outputs["feature_map"].to(torch.bfloat16).requires_grad_()
    loss, _ = crit({**outputs, "feature_map": fmap}, pids, targets)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert fmap.grad is not None and all(p.grad is not None for p in crit.decoder.parameters())


def test_texture_sources(tmp_path, monkeypatch):
    from reid_san.dataset import TextureDataset
    from reid_san.recipe import texture_samples

    from reidcore.data.dataset import ImageDataset

    monkeypatch.setenv(synthetic.CACHE_ENV, str(tmp_path / "cache"))
    split = read_synthetic_textures(tmp_path / "cache", texture_size=32, **TINY_DATA)
    recipe = SANRecipe()
    ds = recipe.train_dataset(tiny_cfg(), split, split.train_labels)
    assert isinstance(ds, TextureDataset) and ds[0][0]["texture"].shape == (3, 32, 32)
    plain = recipe.train_dataset(tiny_cfg(reconstruction_weight=0), split, split.train_labels)
    assert isinstance(plain, ImageDataset)
    bare = [attrs.evolve(s, extras={}) for s in split.train]
    with pytest.raises(DatasetError, match="--textures DIR"):
        texture_samples(tiny_cfg(textures="auto"), bare)
    with pytest.raises(DatasetError, match="does not exist"):
        texture_samples(tiny_cfg(textures=str(tmp_path / "nowhere")), bare)
    folder = tmp_path / "tex"
    folder.mkdir()
    for s in bare:
        Image.new("RGB", (16, 16)).save(folder / (s.path.rsplit("/", 1)[-1][:-4] + ".png"))
    got = texture_samples(tiny_cfg(textures=str(folder)), bare)
    assert all(s.extras["texture"].startswith(str(folder)) for s in got)


# ------------------------------------------------------------------------------ end to end


def _tiny_textures(root, **_kw):
    return read_synthetic_textures(root, texture_size=32, **TINY_DATA)


@pytest.fixture(scope="module")
def tiny_plugin():
    module = types.ModuleType("tiny_san_plugin")
    module.reid_datasets = hookimpl(lambda: {"tiny-textures": _tiny_textures})
    with registered_plugin(module, "tiny-san"):
        yield


@pytest.fixture(scope="module")
def pg_experiment(tiny_plugin, tmp_path_factory):
    """A 3-iteration san-pg run on tiny synthetic pairs: ``(experiment, data folder)``."""
    tmp = tmp_path_factory.mktemp("san-pg")
    exp, data = tmp / "pg", tmp / "data"
    assert main(["run", "san-pg", "--dataset", "tiny-textures", "--data", str(data),
                 "--experiment", str(exp), *TINY]) == 0
    return exp, data


def test_san_pg_run_writes_a_report_and_keeps_the_decoder_in_the_criterion(pg_experiment):
    exp, _data = pg_experiment
    report = json.loads((exp / "report.json").read_text())
    assert report["recipe"] == "san-pg" and report["train"]["iteration"] == 3
    state = checkpoint.load_latest(exp)
    assert decoder_keys(state["model"]) == [] and decoder_keys(state["criterion"])
    assert not any(k.startswith("classifier") for k in state["model"])  # id weight 0


def test_textures_command_writes_one_png_per_image(pg_experiment, tmp_path, capsys):
    exp, data = pg_experiment
    images = list_images(next(data.glob("synthetic-*")) / "bounding_box_train")[:5]
    src = tmp_path / "in"
    src.mkdir()
    for p in images:
        (src / p.name).write_bytes(p.read_bytes())
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    ckpt = checkpoint.list_checkpoints(exp)[-1][1]
    assert main(["san", "textures", "--model", str(ckpt), "--input", str(src),
                 "--output", str(out), "--device", "cpu", "--batch-size", "2"]) == 0
    pngs = sorted(out.glob("*.png"))
    assert [p.stem for p in pngs] == [p.stem for p in images]
    assert not list(out.glob(".*"))  # no temporary file left
    with Image.open(pngs[0]) as im:
        assert im.size == (32, 32) and im.mode == "RGB"
    # resumable: existing textures are kept; --size resizes
    assert main(["san", "textures", "--model", str(exp), "--input", str(src), "--output",
                 str(out), "--device", "cpu"]) == 0
    assert "wrote 0 textures" in capsys.readouterr().out
    assert main(["san", "textures", "--model", str(exp), "--input", str(src), "--output",
                 str(tmp_path / "small"), "--device", "cpu", "--size", "16"]) == 0
    with Image.open(tmp_path / "small" / pngs[0].name) as im:
        assert im.size == (16, 16)
    gen, cfg = load_texture_generator(exp)
    assert (cfg.height, cfg.width) == (64, 32) and not gen.training
    test = _tiny_textures(data)
    err = texture_l1(gen, test.query + test.gallery, 64, 32, 32)
    assert 0.0 < err < 1.0
    black = TextureGenerator(gen.encoder, gen.decoder)
    black.forward = lambda x: torch.zeros(len(x), 3, 32, 32)
    truth = np.mean([np.asarray(Image.open(s.extras["texture"]).convert("RGB").resize((32, 32)),
                                np.float32).mean() / 255 for s in test.query + test.gallery])
    assert texture_l1(black, test.query + test.gallery, 64, 32, 32) == pytest.approx(truth, abs=2e-3)


def test_textures_command_errors(pg_experiment, tmp_path):
    exp, _data = pg_experiment
    with pytest.raises(ExperimentError, match="does not exist"):
        load_texture_generator(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="holds no image"):
        list_images(empty)
    (empty / "a.jpg").write_bytes(b"")
    (empty / "a.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="share the stem"):
        list_images(empty)


def test_san_run_with_a_texture_folder_and_export_without_decoder(pg_experiment, tmp_path):
    exp_pg, _data = pg_experiment
    market = write_tiny_market(tmp_path / "market", num_ids=8, size=(64, 32))
    tex = tmp_path / "texture_market1501"
    assert main(["san", "textures", "--model", str(exp_pg), "--input",
                 str(market / "bounding_box_train"), "--output", str(tex), "--device", "cpu"]) == 0
    exp = tmp_path / "san"
    assert main(["run", "san", "--dataset", "market1501", "--data", str(market), "--textures",
                 str(tex), "--experiment", str(exp), *TINY]) == 0
    report = json.loads((exp / "report.json").read_text())
    assert report["recipe"] == "san" and 0.0 <= report["mAP"] <= 1.0
    log = (exp / "train.log").read_text()
    assert "loss/reconstruction" in log and "loss/perceptual" in log and "loss/id" in log
    state = checkpoint.load_latest(exp)
    assert decoder_keys(state["model"]) == [] and decoder_keys(state["criterion"])

    from reidcore.commands.export import load_experiment_model

    model, _cfg, _name = load_experiment_model(exp)
    assert not has_decoder(model) and decoder_keys(model.state_dict()) == []
    out = tmp_path / "model.pt"
    assert main(["export", "--experiment", str(exp), "--format", "torchscript",
                 "--output", str(out)]) == 0
    exported = torch.jit.load(str(out))
    assert decoder_keys(exported.state_dict()) == []
    n_exported = sum(p.numel() for p in exported.parameters())
    assert n_exported == sum(p.numel() for p in model.parameters())

    # the same network with the reconstruction weight 0 trains without any texture
    exp0 = tmp_path / "san-rec0"
    assert main(["run", "san", "--dataset", "market1501", "--data", str(market),
                 "--reconstruction-weight", "0", "--experiment", str(exp0), *TINY]) == 0
    log0 = (exp0 / "train.log").read_text()
    assert "loss/reconstruction" not in log0 and "loss/perceptual" in log0


def test_init_decoder_loads_san_pg_weights(pg_experiment):
    exp, _data = pg_experiment
    state = checkpoint.load_latest(exp)["criterion"]
    crit = SANRecipe().build_criterion(tiny_cfg(init_decoder=str(exp)))
    for k, v in crit.decoder.state_dict().items():
        assert torch.equal(v, state["decoder." + k]), k
    with pytest.raises(ExperimentError, match="no SA-Dec weights"):
        SANRecipe().build_criterion(tiny_cfg(init_decoder=str(_reid_only(exp))))


def _reid_only(exp):
    """A copy of ``exp`` whose checkpoint's criterion state has no decoder."""
    import shutil

    other = exp.parent / "reid-only"
    if not other.exists():
        shutil.copytree(exp, other)
        path = checkpoint.list_checkpoints(other)[-1][1]
        state = torch.load(path, weights_only=False)
        state["criterion"] = {}
        torch.save(state, path)
    return other


def test_keypoint_textures_command(tiny_plugin, tmp_path):
    data = tmp_path / "data"
    out = tmp_path / "kp"
    assert main(["san", "keypoint-textures", "--dataset", "tiny-textures", "--data", str(data),
                 "--output", str(out), "--size", "32", "--head-point", "centre"]) == 0
    split = _tiny_textures(data)
    assert len(list(out.glob("*.png"))) == len(split.train)
    with Image.open(next(out.glob("*.png"))) as im:
        assert im.size == (32, 32)
        assert np.asarray(im).max() > 0  # body parts were warped in

"""The dSprites DNC memory study: rollouts and actions as the post defines them, teacher forcing, and the two tests
(linear probes, mutual information) against planted signals and independent controls."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

from dreamlab.config import make_config
from dreamlab.data.dsprites import DSPRITES_LATENT_NAMES, DSprites, class_index
from dreamlab.dnc import DNC
from dreamlab.dnc.dsprites_rollouts import (
    ACTION_COLUMNS,
    ACTION_LATENTS,
    class_deltas,
    input_size,
    next_sprite_loss,
    prepare_images,
    random_rollouts,
    teacher_forcing,
    x_position_rollouts,
)
from dreamlab.dnc.memory_study import PRESETS, DNCSpritesConfig, build_models, run, train
from dreamlab.dnc.probes import (
    LatentDecoder,
    LatentTargets,
    lagged_samples,
    latent_targets,
    mutual_information_test,
    plugin_mutual_information,
    probe_test,
    quantile_bins,
)
from dreamlab.runs import UserError


@pytest.fixture(autouse=True)
def single_thread():
    """The DNC's and probes' ops here are tiny: extra intra-op threads only add overhead, badly so on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dataset() -> DSprites:
    return DSprites.generated()


def test_actions_are_latent_value_deltas_with_zero_first_action(dataset):
    rollouts = random_rollouts(dataset, 3, 7, np.random.default_rng(0))
    assert rollouts.classes.shape == (3, 8, 6) and rollouts.actions.shape == (3, 8, len(ACTION_LATENTS))
    assert ACTION_LATENTS == ("shape", "scale", "orientation", "posX", "posY")
    np.testing.assert_array_equal(rollouts.actions[:, 0], 0.0)
    for t in range(1, 8):
        expected = rollouts.values[:, t, list(ACTION_COLUMNS)] - rollouts.values[:, t - 1, list(ACTION_COLUMNS)]
        np.testing.assert_allclose(rollouts.actions[:, t], expected)
    # The post's worked example: scale 0.6 -> 0.7 and orientation pi -> 0 give deltas 0.1 and -pi.
    values = np.zeros((2, 6))
    values[:, DSPRITES_LATENT_NAMES.index("scale")] = [0.6, 0.7]
    values[:, DSPRITES_LATENT_NAMES.index("orientation")] = [np.pi, 0.0]
    np.testing.assert_allclose(class_deltas(values)[1], [0.0, 0.1, -np.pi, 0.0, 0.0])
    # Images are the dataset's images of the drawn classes.
    np.testing.assert_array_equal(rollouts.images, dataset.images(class_index(rollouts.classes)))


def test_x_position_rollouts_vary_only_x(dataset):
    rollouts = x_position_rollouts(dataset, 4, 30, np.random.default_rng(1))
    x_column = DSPRITES_LATENT_NAMES.index("posX")
    others = [c for c in range(6) if c != x_column]
    assert (rollouts.classes[:, :, others] == rollouts.classes[:, :1, others]).all()
    assert len(np.unique(rollouts.classes[:, :, x_column])) > 10
    moved = ACTION_LATENTS.index("posX")
    np.testing.assert_array_equal(np.delete(rollouts.actions, moved, axis=-1), 0.0)


def test_teacher_forcing_pairs_image_with_action_to_next_image(dataset):
    rollouts = random_rollouts(dataset, 2, 5, np.random.default_rng(2))
    inputs, targets = teacher_forcing(rollouts, image_size=16, dtype=torch.float64)
    assert inputs.shape == (2, 5, input_size(16)) == (2, 5, 16 * 16 + 5) and targets.shape == (2, 5, 256)
    images = prepare_images(rollouts.images, 16).flatten(-2).double()
    torch.testing.assert_close(inputs[..., :256], images[:, :-1])
    torch.testing.assert_close(targets, images[:, 1:])
    torch.testing.assert_close(inputs[..., 256:], torch.as_tensor(rollouts.actions[:, 1:]))
    # Block averaging keeps the sprite's area: 64x64 pixel count = 16 * (16x16 coverage sum).
    np.testing.assert_allclose(images.sum(-1).numpy() * 16, rollouts.images.sum((-1, -2)))
    with pytest.raises(ValueError, match="must divide"):
        prepare_images(rollouts.images, 48)


def test_next_sprite_loss_learns_and_aux_decoder_gets_gradients(dataset):
    torch.manual_seed(0)
    rollouts = random_rollouts(dataset, 4, 10, np.random.default_rng(3))
    inputs, targets = teacher_forcing(rollouts, image_size=8)
    dnc = DNC(input_size(8), 64, hidden_size=64, memory_slots=8, word_size=8, read_heads=2)
    decoder = LatentDecoder(2 * 8)
    shape = torch.as_tensor(rollouts.classes[:, :-1, 1])
    values = torch.as_tensor(rollouts.values[:, :-1][..., [2, 3, 4, 5]], dtype=torch.float32)
    optimiser = torch.optim.Adam([*dnc.parameters(), *decoder.parameters()], lr=3e-2)
    losses = []
    for _ in range(80):
        bce, aux, state = next_sprite_loss(dnc, inputs, targets, None, decoder, "read_vectors", shape, values)
        optimiser.zero_grad()
        (bce + aux).backward()
        optimiser.step()
        losses.append(bce.item())
    assert state.memory.shape == (4, 8, 8)
    assert decoder.linear.weight.grad is not None and decoder.linear.weight.grad.abs().sum() > 0
    # From the logit-0 start (64 * log 2 = 44 nats) to well below the best input-blind (per-pixel constant)
    # predictor of this batch: the prediction uses the inputs.
    mean = targets.mean((0, 1)).clamp(1e-4, 1 - 1e-4)
    constant = -(targets * mean.log() + (1 - targets) * (1 - mean).log()).sum(-1).mean().item()
    assert losses[-1] < 0.7 * constant < losses[0]
    with pytest.raises(ValueError, match="aux_source"):
        next_sprite_loss(dnc, inputs, targets, None, decoder, "usage", shape, values)


def planted_targets(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    classes = np.stack([np.zeros(n, int), *(rng.integers(0, k, n) for k in (3, 6, 40, 32, 32))], axis=-1)
    values = classes.astype(float) * np.array([0, 1, 0.1, 2 * np.pi / 39, 1 / 31, 1 / 31]) + np.array(
        [1, 1, 0.5, 0, 0, 0]
    )
    return classes, values


def test_probe_recovers_planted_linear_signal_and_fails_on_noise():
    rng = np.random.default_rng(4)
    classes, values = planted_targets(3000, rng)
    targets = latent_targets(classes, values)
    onehot = np.eye(3)[targets.shape]
    signal = np.concatenate([onehot, targets.values], axis=1) @ rng.normal(size=(7, 40))
    features = (signal + 0.01 * rng.normal(size=signal.shape)).astype(np.float32)
    train, test = slice(0, 2000), slice(2000, None)
    split = lambda x, t, s: (x[s], LatentTargets(t.shape[s], t.values[s]))  # noqa: E731
    scores = probe_test(*split(features, targets, train), *split(features, targets, test), epochs=30, lr=1e-2)
    assert scores["test"]["shape_error"] < 0.02
    for name in ("scale", "orientation", "posX", "posY"):
        assert scores["test"][f"{name}_r2"] > 0.95
    noise = rng.normal(size=features.shape).astype(np.float32)
    scores = probe_test(*split(noise, targets, train), *split(noise, targets, test), epochs=30, lr=1e-2)
    assert scores["test"]["shape_error"] > 0.55
    for name in ("scale", "orientation", "posX", "posY"):
        assert scores["test"][f"{name}_r2"] < 0.05


def test_lagged_samples_pair_features_with_earlier_sprites():
    rng = np.random.default_rng(5)
    classes, values = planted_targets(2 * 20, rng)
    classes, values = classes.reshape(2, 20, 6), values.reshape(2, 20, 6)
    steps = np.array([10, 12, 19])
    features = values[:, steps - 5, 4:5]  # features remember posX of five steps back
    x, targets = lagged_samples(features, classes, values, steps, lag=5)
    np.testing.assert_array_equal(x[:, 0], targets.values[:, 2])
    _, current = lagged_samples(features, classes, values, steps, lag=0)
    assert not np.array_equal(x[:, 0], current.values[:, 2])
    with pytest.raises(ValueError, match="outside"):
        lagged_samples(features, classes, values, steps, lag=11)


def test_plugin_mutual_information_matches_sklearn_and_binning_handles_constants():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 4, (200, 3))
    sequence = rng.integers(0, 5, 200)
    labels[:, 1] = sequence % 4
    ours = plugin_mutual_information(labels, sequence, 4, 5)
    np.testing.assert_allclose(ours, [mutual_info_score(labels[:, i], sequence) for i in range(3)], atol=1e-12)
    contents = np.stack([np.zeros(50), np.arange(50.0)], axis=1)
    bins = quantile_bins(contents, 5)
    assert len(np.unique(bins[:, 0])) == 1
    np.testing.assert_array_equal(np.bincount(bins[:, 1]), [10] * 5)


def test_mutual_information_test_detects_planted_location_not_independent_control():
    rng = np.random.default_rng(7)
    contents, sequences, controls = [], [], []
    for _ in range(30):
        length = int(rng.integers(100, 200))
        sequence = rng.integers(0, 32, length)
        memory = rng.normal(size=(length, 20))
        memory[:, 7] = sequence / 31 + 0.2 * rng.normal(size=length)  # one location tracks X
        contents.append(memory)
        sequences.append(sequence)
        controls.append(rng.integers(0, 32, length))
    result = mutual_information_test(contents, sequences, controls, bins=8, sequence_classes_total=32)
    assert list(result["detected"]) == [7]
    assert result["true_mi"][7] > 0.5 > result["control_mi"][7]
    # Independent control: feeding the control sequences as "true" ones finds no location at all.
    shuffled = [rng.integers(0, 32, len(s)) for s in sequences]
    independent = mutual_information_test(contents, shuffled, controls, bins=8, sequence_classes_total=32)
    assert len(independent["detected"]) == 0
    with pytest.raises(ValueError, match="at least 2"):
        mutual_information_test(contents[:1], sequences[:1], controls[:1], 8, 32)


def test_training_resumed_after_an_epoch_matches_one_uninterrupted_run(dataset, tmp_path):
    """Each batch is drawn from (seed, epoch, batch) and the loop checkpoints weights, optimiser and curve, so
    training one epoch and then resuming to two gives the curve and weights of two epochs in one go."""

    def trained(run_dir, *epochs):
        for count in epochs:
            config = make_config(DNCSpritesConfig, PRESETS, "smoke", epochs=count, aux_weight=1.0)
            torch.manual_seed(0)
            dnc, decoder = build_models(config, torch.device("cpu"), torch.float32)
            loop = train(config, dnc, decoder, dataset, torch.device("cpu"), torch.float32, str(run_dir))
        return loop.curve.rows, dnc.state_dict()

    rows, weights = trained(tmp_path / "straight", 2)
    resumed_rows, resumed_weights = trained(tmp_path / "resumed", 1, 2)
    assert [(row["epoch"], row["batch"]) for row in rows] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    drop_seconds = lambda rows: [{k: v for k, v in row.items() if k != "seconds"} for row in rows]  # noqa: E731
    assert drop_seconds(resumed_rows) == drop_seconds(rows)
    for key, value in weights.items():
        torch.testing.assert_close(resumed_weights[key], value, rtol=0, atol=0)


@pytest.mark.slow
def test_script_writes_results_and_figures_and_the_study_resumes_them(tmp_path):
    results, run_dir = tmp_path / "results", tmp_path / "run"
    args = ["--preset", "smoke", "--aux_weight", "1.0", "--threads", "1"]
    script = Path(__file__).resolve().parents[1] / "experiments" / "dnc_dsprites.py"
    command = [sys.executable, str(script), *args, "--results_dir", str(results), "--run_dir", str(run_dir)]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    record = json.loads((results / "dnc/dsprites_memory_B_aux_smoke.json").read_text())
    assert set(record["metrics"]["test1"]["sources"]) == {"memory", "read_vectors", "controller_h"}
    assert (results / "dnc/dsprites_memory.json").is_file()
    for figure in ("curve", "probes", "mutual_information", "examples"):
        assert (results / f"dnc/dsprites_memory_B_aux_smoke_{figure}.png").is_file()
    config = make_config(
        DNCSpritesConfig, PRESETS, "smoke", aux_weight=1.0, threads=1, results_dir=str(results), run_dir=str(run_dir)
    )
    again = run(config)  # resumes the finished checkpoint: no training, no test is redone
    assert json.loads(json.dumps(again["test1"])) == record["metrics"]["test1"]
    with pytest.raises(UserError, match="model"):
        make_config(DNCSpritesConfig, PRESETS, "smoke", model="C")

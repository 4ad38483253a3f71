"""Every module computes the same thing on an accelerator as on the CPU.

The device under test is ``$DREAMLAB_TEST_DEVICE`` (default ``cuda``); the tests skip cleanly where it is not
available, so on a CPU-only machine they skip, and ``experiments/gpu_check.py`` runs them on a GPU. With
``DREAMLAB_TEST_DEVICE=cpu`` they compare the CPU with itself, which is how the GPU script's own test exercises them.

Random draws differ between devices (each has its own generator), so :func:`same_draws` makes ``torch.rand``,
``torch.randn`` and ``torch.randint`` draw from one CPU stream and move the result to the device asked for: both
sides then see the same noise and must agree to float64 round-off (float32 for the GAN's spectral norm and convs).
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch

from dreamlab.runtime import resolve_device

pytestmark = pytest.mark.cuda

DEVICE_NAME = os.environ.get("DREAMLAB_TEST_DEVICE", "cuda")


def _device_or_skip() -> torch.device:
    try:
        return resolve_device(DEVICE_NAME)
    except ValueError as err:
        pytest.skip(f"device {DEVICE_NAME!r} not available: {err}")


@pytest.fixture
def device() -> torch.device:
    return _device_or_skip()


@contextlib.contextmanager
def same_draws(seed: int) -> Iterator[None]:
    """torch.rand / randn / randint draw from one seeded CPU generator, then move to the requested device."""
    stream = torch.Generator().manual_seed(seed)
    originals = {name: getattr(torch, name) for name in ("rand", "randn", "randint")}

    def wrap(name: str) -> Callable:
        original = originals[name]

        def draw(*args, generator=None, device=None, **kwargs):
            return original(*args, generator=stream, **kwargs).to(device or "cpu")

        return draw

    for name in originals:
        setattr(torch, name, wrap(name))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(torch, name, original)


def grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().cpu() for n, p in module.named_parameters() if p.grad is not None}


def assert_close_tree(a, b, rtol: float, atol: float) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_close_tree(a[key], b[key], rtol, atol)
    else:
        torch.testing.assert_close(torch.as_tensor(a).cpu(), torch.as_tensor(b).cpu(), rtol=rtol, atol=atol)


def on_both(
    device: torch.device, build: Callable[[], torch.nn.Module], run: Callable, dtype=torch.float64, seed: int = 0
):
    """``run(model, device)`` on a CPU copy and a device copy of the same model, under the same draws."""
    torch.manual_seed(seed)
    model = build().to(dtype=dtype)
    results = []
    for target in (torch.device("cpu"), device):
        copy_ = copy.deepcopy(model).to(target)
        with same_draws(seed + 1):
            results.append((run(copy_, target), grads(copy_)))
    return results


def test_vae_step(device):
    from dreamlab.worldmodels.vae import ConvVAE, vae_loss

    images = torch.rand(4, 3, 64, 64, dtype=torch.float64)

    def run(vae, target):
        x = images.to(target)
        reconstruction, mu, logvar = vae(x)
        loss = vae_loss(x, reconstruction, mu, logvar)[0]
        loss.backward()
        return loss.detach()

    (loss_cpu, grads_cpu), (loss_dev, grads_dev) = on_both(device, lambda: ConvVAE(8), run)
    assert_close_tree(loss_cpu, loss_dev, 1e-9, 1e-9)
    assert_close_tree(grads_cpu, grads_dev, 1e-7, 1e-9)


@pytest.mark.parametrize("core", ["lstm", "dnc"])
def test_mdnrnn_step(device, core):
    from dreamlab.worldmodels.mdnrnn import MDNRNN, mdnrnn_loss

    options = {"memory_slots": 8, "word_size": 4, "read_heads": 2} if core == "dnc" else {}
    z = torch.randn(3, 7, 6, dtype=torch.float64)
    actions = torch.randn(3, 7, 2, dtype=torch.float64)
    done = torch.rand(3, 7) < 0.2
    mask = torch.ones(3, 7, dtype=torch.bool)

    def run(model, target):
        output, _ = model(z.to(target), actions.to(target), model.initial_state(3))
        loss = mdnrnn_loss(output, z.roll(-1, 1).to(target), mask.to(target), done.to(target), mask.to(target))[0]
        loss.backward()
        return loss.detach()

    def build():
        return MDNRNN(6, 2, 16, 3, core, predict_done=True, core_options=options)

    (loss_cpu, grads_cpu), (loss_dev, grads_dev) = on_both(device, build, run)
    assert_close_tree(loss_cpu, loss_dev, 1e-9, 1e-9)
    assert_close_tree(grads_cpu, grads_dev, 1e-7, 1e-9)


def test_batched_dream_and_cmaes_fitness(device):
    """The batched dream (CMA-ES's fitness in the dream) returns the same scores on the device."""
    from dreamlab.cmaes import CMAES
    from dreamlab.worldmodels import Dream, LinearController, get_task
    from dreamlab.worldmodels.mdnrnn import MDNRNN

    task = get_task("doom")
    torch.manual_seed(0)
    model = MDNRNN(6, task.action_feature_size, 16, 3, "lstm", predict_done=True).double()
    controller = LinearController(6 + model.core.controller_feature_size(False), task)
    initial_mu, initial_logvar = torch.randn(10, 6), torch.randn(10, 6) - 2
    es = CMAES(np.zeros(controller.n_params), 0.5, popsize=6, seed=0)
    candidates = torch.as_tensor(es.ask())
    returns = []
    for target in (torch.device("cpu"), device):
        dream = Dream(copy.deepcopy(model).to(target), task, controller, initial_mu, initial_logvar, max_steps=60)
        with same_draws(3):
            returns.append(dream.returns(candidates, trials=4, seed=5).cpu())
    assert returns[0].shape == (6, 4)
    torch.testing.assert_close(returns[0], returns[1])


def test_dnc_forward_backward(device):
    from dreamlab.dnc import DNC

    x = torch.randn(2, 9, 5, dtype=torch.float64)

    def run(dnc, target):
        y, state = dnc(x.to(target))
        (y.square().mean() + state.memory.sum()).backward()
        return y.detach()

    (y_cpu, grads_cpu), (y_dev, grads_dev) = on_both(device, lambda: DNC(5, 3, 16, 8, 4, 2), run)
    assert_close_tree(y_cpu, y_dev, 1e-9, 1e-9)
    assert_close_tree(grads_cpu, grads_dev, 1e-7, 1e-9)


def test_draw_step(device):
    from dreamlab.draw import DRAW, bound_terms

    images = torch.rand(3, 1, 16, 16, dtype=torch.float64)

    def run(model, target):
        reconstruction, kl = bound_terms(model, images.to(target), "bernoulli")
        loss = (reconstruction + kl).mean()
        loss.backward()
        return loss.detach()

    def build():
        return DRAW(1, 16, 16, glimpses=4, enc_size=16, dec_size=16, z_size=4, attention=True)

    (loss_cpu, grads_cpu), (loss_dev, grads_dev) = on_both(device, build, run)
    assert_close_tree(loss_cpu, loss_dev, 1e-9, 1e-9)
    assert_close_tree(grads_cpu, grads_dev, 1e-7, 1e-9)


@pytest.mark.parametrize("variant", ["sncgan", "cgan"])
def test_gan_training_step(device, variant):
    from dreamlab.gan.training import GANTrainer

    real = torch.rand(4, 3, 32, 32) * 2 - 1
    cond = torch.eye(5)[torch.arange(4) % 5]
    stats = []
    generated = []
    for target in (torch.device("cpu"), device):
        torch.manual_seed(0)
        trainer = GANTrainer(variant, 5, 32, z_dim=8, g_width=8, d_width=8, device=target)
        with same_draws(1):
            stats.append([trainer.step(real.to(target), cond.to(target)) for _ in range(2)])
            generated.append(trainer.generate(torch.randn(4, 8, device=target), cond.to(target)).cpu())
    # float32 convolutions differ between backends by ~1e-6 relative; two Adam steps keep that small.
    for cpu_row, device_row in zip(*stats, strict=True):
        assert cpu_row.keys() == device_row.keys()
        for key in cpu_row:
            assert cpu_row[key] == pytest.approx(device_row[key], rel=1e-3, abs=1e-4), key
    torch.testing.assert_close(generated[0], generated[1], rtol=1e-3, atol=1e-3)


def test_rnd_updates(device):
    import dreamlab.envs  # noqa: F401  (registers dreamlab/PixelCopter-v0)
    from dreamlab.config import make_config
    from dreamlab.rnd.agent import RNDPPO
    from dreamlab.rnd.config import PRESETS, RNDConfig

    curves = []
    for target in ("cpu", str(device)):
        config = make_config(
            RNDConfig, PRESETS, "smoke", device=target, dtype="float64", num_envs=4, rollout_steps=16, seed=0
        )
        agent = RNDPPO(config=config)
        try:
            with same_draws(2):
                agent.learn(total_env_steps=agent.env_steps + 3 * 4 * 16 + config.obs_norm_init_steps * 4)
        finally:
            agent.close()
        curves.append(agent.curves.rows)
    assert len(curves[0]) == len(curves[1]) >= 2
    for cpu_row, device_row in zip(*curves, strict=True):
        for key, value in cpu_row.items():
            if isinstance(value, float) and "per_second" not in key and "seconds" not in key:
                assert value == pytest.approx(device_row[key], rel=1e-6, abs=1e-8), key

"""V, M and the recurrent cores: shapes, the free-bits KL, learning on a small problem, state handling."""

import math

import numpy as np
import pytest
import torch

from dreamlab.mdn import mixture_nll
from dreamlab.worldmodels import (
    MDNRNN,
    ConvVAE,
    EpisodeStreams,
    LatentEpisodes,
    agent_spec,
    get_task,
    kl_to_standard_normal,
    make_chunk,
    make_core,
    mdnrnn_loss,
    reset_state,
    vae_loss,
)
from dreamlab.worldmodels.controller import controller_features, controller_input_size
from dreamlab.worldmodels.real import Agent


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small models: extra intra-op threads only add overhead (and stall badly on a shared, busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_vae_shapes_and_range():
    vae = ConvVAE(64)
    images = torch.rand(3, 3, 64, 64)
    reconstruction, mu, logvar = vae(images)
    assert reconstruction.shape == (3, 3, 64, 64)
    assert mu.shape == logvar.shape == (3, 64)
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1
    # The encoder ends at 2x2x256, as in World Models.
    assert vae.encoder(images).shape == (3, 1024)
    with pytest.raises(ValueError, match="64, 64"):
        vae.encode(torch.rand(2, 3, 32, 32))


def test_kl_matches_closed_form_and_free_bits_floor():
    mu = torch.tensor([[1.0, -2.0]])
    logvar = torch.tensor([[math.log(4.0), 0.0]])
    # KL(N(mu, s^2) || N(0, 1)) = (s^2 + mu^2 - 1 - log s^2) / 2 per dimension.
    expected = 0.5 * (4 + 1 - 1 - math.log(4)) + 0.5 * (1 + 4 - 1 - 0)
    assert kl_to_standard_normal(mu, logvar).item() == pytest.approx(expected, rel=1e-6)
    images = torch.zeros(1, 3, 64, 64)
    # A posterior equal to the prior has KL 0, floored at tolerance * z_dim = 0.5 * 2.
    _, _, kl = vae_loss(images, images, torch.zeros(1, 2), torch.zeros(1, 2), kl_tolerance=0.5)
    assert kl.item() == pytest.approx(1.0)
    # Above the floor the KL passes through unchanged.
    _, _, kl = vae_loss(images, images, mu, logvar, kl_tolerance=0.5)
    assert kl.item() == pytest.approx(expected, rel=1e-6)


def test_mdnrnn_shapes_and_bad_input():
    model = MDNRNN(z_dim=8, action_size=3, hidden_size=16, n_components=5)
    state = model.initial_state(4)
    out, state = model(torch.randn(4, 7, 8), torch.randn(4, 7, 3), state)
    assert out.logits.shape == (4, 7, 8, 5)
    assert out.mu.shape == out.log_sigma.shape == (4, 7, 8, 5, 1)
    assert out.done_logit.shape == (4, 7)
    assert state[0].shape == (4, 16)
    with pytest.raises(ValueError, match="action features"):
        model(torch.randn(4, 7, 8), torch.randn(4, 7, 2), model.initial_state(4))
    with pytest.raises(ValueError, match="unknown recurrent core"):
        make_core("gru", 4, 4)


def test_reset_inside_a_sequence_equals_separate_sequences():
    torch.manual_seed(0)
    model = MDNRNN(z_dim=4, action_size=3, hidden_size=8)
    z, a = torch.randn(1, 10, 4), torch.randn(1, 10, 3)
    reset = torch.zeros(1, 10, dtype=torch.bool)
    reset[0, 6] = True
    joined, _ = model(z, a, model.initial_state(1), reset)
    first, _ = model(z[:, :6], a[:, :6], model.initial_state(1))
    second, _ = model(z[:, 6:], a[:, 6:], model.initial_state(1))
    torch.testing.assert_close(joined.mu, torch.cat([first.mu, second.mu], dim=1))
    state = model.initial_state(2)
    moved = (state[0] + 1, state[1] + 2)
    back = reset_state(moved, torch.tensor([True, False]), state)
    assert back[0][0].abs().sum() == 0 and (back[0][1] == 1).all()


def test_dnc_core_plugs_in():
    model = MDNRNN(
        z_dim=4,
        action_size=3,
        hidden_size=8,
        core="dnc",
        core_options={"memory_slots": 6, "word_size": 5, "read_heads": 2},
    )
    state = model.initial_state(2)
    out, state = model.step(torch.randn(2, 4), torch.randn(2, 3), state)
    assert out.logits.shape == (2, 4, 5)
    # C sees h and the two read vectors, or with z_only z alone.
    assert model.core.controller_features(state, include_cell=False).shape == (2, 8 + 2 * 5)
    z = torch.randn(2, 4)
    assert controller_features(z, model.core, state, False, z_only=True) is z
    assert controller_input_size(4, model.core, False, z_only=True) == 4
    both = controller_features(z, model.core, state, False, z_only=False)
    assert both.shape == (2, controller_input_size(4, model.core, False, z_only=False)) == (2, 4 + 8 + 2 * 5)


def test_mdnrnn_learns_a_small_dynamics_problem():
    """z_{t+1} = 0.9 z_t + an action-dependent shift + noise: M's z NLL must fall far below where it starts."""
    generator = torch.Generator().manual_seed(0)
    task = get_task("doom")
    mus, logvars, actions, dones = [], [], [], []
    shift = torch.tensor([0.0, 0.5, -0.5])
    for _ in range(40):
        z = torch.zeros(30, 2)
        a = torch.randint(3, (30,), generator=generator)
        for t in range(1, 30):
            z[t] = 0.9 * z[t - 1] + shift[a[t - 1]] + 0.05 * torch.randn(2, generator=generator)
        done = torch.zeros(30, dtype=torch.bool)
        done[-1] = True
        mus.append(z.numpy())
        logvars.append(torch.full((30, 2), -8.0).numpy())
        actions.append(a.numpy())
        dones.append(done.numpy())
    data = LatentEpisodes(mus, logvars, actions, dones)
    torch.manual_seed(0)
    model = MDNRNN(z_dim=2, action_size=3, hidden_size=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    streams = EpisodeStreams(data.lengths, batch_size=8, seq_len=15, seed=0)
    state = model.initial_state(8)
    losses = []
    for _ in range(150):
        chunk = make_chunk(data, *streams.next_indices(), generator)
        out, state = model(chunk.z, task.action_features(chunk.actions, torch.float32), state, chunk.reset)
        loss, z_nll, _ = mdnrnn_loss(out, chunk.z_next, chunk.z_mask, chunk.done, torch.ones_like(chunk.z_mask))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        state = tuple(s.detach() for s in state)
        losses.append(z_nll.item())
    start, end = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    # Noise 0.05 per dimension: the best NLL is log(0.05 sqrt(2 pi e)) ~ -1.58 per dimension.
    assert end < start - 1.5 and end < -0.5, (start, end)


def test_input_skip_starts_as_a_no_op_and_carries_what_a_narrow_core_cannot():
    """z_{t+1} = z_t + an action-dependent shift in 48 dimensions through a 2-unit LSTM: only the skip copies."""
    torch.manual_seed(0)
    plain = MDNRNN(z_dim=48, action_size=3, hidden_size=2, n_components=2, predict_done=False)
    skip = MDNRNN(z_dim=48, action_size=3, hidden_size=2, n_components=2, predict_done=False, input_skip=True)
    skip.load_state_dict(plain.state_dict(), strict=False)
    z, a = torch.randn(4, 5, 48), torch.eye(3)[torch.randint(3, (4, 5))]
    torch.testing.assert_close(skip(z, a, skip.initial_state(4))[0].mu, plain(z, a, plain.initial_state(4))[0].mu)

    shift = torch.tensor([0.0, 1.0, -1.0])
    final = {}
    for name, model in (("plain", plain), ("skip", skip)):
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
        for _ in range(300):
            z = torch.randn(16, 8, 48)
            actions = torch.randint(3, (16, 8))
            target = z + shift[actions].unsqueeze(-1) + 0.01 * torch.randn(16, 8, 48)
            out, _ = model(z, torch.eye(3)[actions], model.initial_state(16))
            nll = mixture_nll(out.logits, out.mu, out.log_sigma, target.unsqueeze(-1)).mean()
            optimizer.zero_grad()
            nll.backward()
            optimizer.step()
        final[name] = nll.item()
    # Unexplained variance 1 + shifts vs noise 0.01: about 1.6 nats against well below 0.
    assert final["plain"] > 1.0 and final["skip"] < -1.0, final


def test_episode_streams_play_whole_episodes_without_padding_and_resume():
    lengths = [5, 3, 7, 1, 4]
    streams = EpisodeStreams(lengths, batch_size=2, seq_len=4, seed=1)
    traces = [[], []]
    for _ in range(20):
        episode, position, reset = streams.next_indices()
        assert (reset == (position == 0)).all()
        for b in range(2):
            traces[b].extend(zip(episode[b].tolist(), position[b].tolist(), strict=True))
    handed = []
    for trace in traces:
        runs = []
        for e, t in trace:
            if t == 0:
                runs.append([])
            runs[-1].append((e, t))
        for run in runs[:-1]:  # every finished episode is played whole, in order
            e = run[0][0]
            assert run == [(e, t) for t in range(lengths[e])]
        handed.extend(run[0][0] for run in runs)
    # Each epoch hands out every episode exactly once.
    counts = [handed.count(e) for e in range(len(lengths))]
    assert all(streams.epoch <= c <= streams.epoch + 1 for c in counts), (counts, streams.epoch)
    clone = EpisodeStreams(lengths, batch_size=2, seq_len=4, seed=99)
    clone.load_state_dict(streams.state_dict())
    for _ in range(5):
        for a, b in zip(streams.next_indices(), clone.next_indices(), strict=True):
            assert (a == b).all()


def test_real_agent_draws_z_from_vs_posterior_reproducibly_per_episode_seed():
    torch.manual_seed(0)
    vae, model = ConvVAE(4), MDNRNN(4, 3, 8)
    with torch.no_grad():
        vae.to_logvar.bias.fill_(2.0)  # a wide posterior: sampled z's differ clearly from the mean
    spec = agent_spec("doom", vae, model, 8, "lstm", {}, False)
    params = np.random.default_rng(0).normal(size=3 * (4 + 8) + 3)
    frames = np.random.default_rng(1).integers(0, 256, size=(30, 64, 64, 3), dtype=np.uint8)
    agent = Agent(spec, params)

    def episode(seed):
        agent.reset(seed)
        return [int(agent.act(frame)) for frame in frames]

    first = episode(5)
    assert episode(5) == first  # the same episode seed gives the same z draws and actions
    assert episode(6) != first  # z is sampled, not V's mean

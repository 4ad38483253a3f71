"""Next-state prediction of integer-coded game states with an MDN-RNN: the MDN-DNC thesis' Pommerman study.

The model is World Models' M (:class:`dreamlab.worldmodels.MDNRNN`, core ``lstm`` or ``dnc``) fed the normalised
state s_t / high and the agents' one-hot actions a_t; its per-integer Gaussian mixture over s_{t+1} / high is
trained by teacher forcing (Ha & Schmidhuber's M loss, the mixture NLL averaged over dimensions). A prediction is
read off the mixture in two ways and rounded back to integers: the *mode* (mean of the most probable component)
and a *sample*. Accuracy is exact equality with the true s_{t+1}, per component (all its integers right), per
integer, and for the whole state; the "copy s_t" prediction is the baseline, since most of a board does not change
from one step to the next, and accuracy on the transitions where a component changes shows what a model learnt
beyond copying.

The integers are discrete, and a Gaussian density fitted to discrete values can grow without bound by shrinking
sigma onto them. With ``dequantize`` the targets get uniform noise of one unit's width, (v + u) / high with
u ~ U(-1/2, 1/2) (Theis et al., "A note on the evaluation of generative models", 2016): the NLL of the dequantised
data bounds the discrete data's and stays finite, and rounding recovers v from any prediction within half a unit.

With ``residual`` the mixture is over the change (s_{t+1} - s_t) / high and a prediction adds it to s_t. Most
integers of a game state keep their value from one step to the next, so a residual model only has to learn to
predict "no change" there (a mixture centred on zero) and spends its capacity on what does change; the prediction
is still of s_{t+1}, rounded as above.

Nothing here knows Pommerman: a :class:`StateLayout` lists named components of integers in ``0..high``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from dreamlab.checkpoint import Checkpointer
from dreamlab.files import atomic_savez, load_npz
from dreamlab.mdn import most_likely_mean, sample_mixture
from dreamlab.results import CurveLog
from dreamlab.worldmodels.mdnrnn import MDNRNN, MDNOutput, mdnrnn_loss
from dreamlab.worldmodels.training import train_by_tbptt

DATASET_KEYS = ("states", "actions", "lengths")


class ComponentLike(Protocol):
    name: str
    size: int
    high: int


class StateLayout:
    """Named components of a state vector, each ``size`` integers in ``0..high``, in order."""

    def __init__(self, components: Sequence[ComponentLike]):
        if not components:
            raise ValueError("a state layout needs at least one component")
        names = [c.name for c in components]
        if len(set(names)) != len(names):
            raise ValueError(f"component names must be unique, got {names}")
        bad = [c.name for c in components if c.size < 1 or c.high < 1]
        if bad:
            raise ValueError(f"components {bad} need size >= 1 and high >= 1")
        self.names = tuple(names)
        self.sizes = tuple(int(c.size) for c in components)
        self.highs = np.concatenate([np.full(c.size, c.high, dtype=np.int64) for c in components])
        self.slices: dict[str, slice] = {}
        start = 0
        for name, size in zip(self.names, self.sizes, strict=True):
            self.slices[name] = slice(start, start + size)
            start += size

    @property
    def size(self) -> int:
        return len(self.highs)

    def normalise(self, values: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Integers (..., D) -> values / high in [0, 1]."""
        highs = torch.as_tensor(self.highs, device=values.device, dtype=dtype)
        return values.to(dtype) / highs

    def to_integers(self, normalised: torch.Tensor) -> torch.Tensor:
        """A prediction in normalised units (..., D) -> the nearest integers, clipped to 0..high (int64)."""
        highs = torch.as_tensor(self.highs, device=normalised.device, dtype=normalised.dtype)
        return torch.minimum(torch.round(normalised * highs).clamp_min(0), highs).long()


class TransitionGames:
    """Whole games of integer states: ``states`` (sum(T_g + 1), D) holds each game's initial state and the state
    after each of its T_g steps, ``actions`` (sum(T_g), A) the joint action of each step, ``lengths`` (G,) T_g."""

    def __init__(self, states: np.ndarray, actions: np.ndarray, lengths: np.ndarray):
        states, actions = np.asarray(states), np.asarray(actions)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if states.ndim != 2 or actions.ndim != 2 or self.lengths.ndim != 1 or len(self.lengths) == 0:
            raise ValueError(
                f"need states (N, D), actions (M, A) and lengths (G,) with G >= 1; got shapes {states.shape}, "
                f"{actions.shape}, {self.lengths.shape}"
            )
        if (self.lengths < 1).any():
            raise ValueError("every game needs at least one step")
        steps = int(self.lengths.sum())
        if len(actions) != steps or len(states) != steps + len(self.lengths):
            raise ValueError(
                f"{len(self.lengths)} games of {steps} steps need {steps + len(self.lengths)} states and {steps} "
                f"actions; got {len(states)} and {len(actions)}"
            )
        if not (np.issubdtype(states.dtype, np.integer) and np.issubdtype(actions.dtype, np.integer)):
            raise ValueError(f"states and actions must be integers, got {states.dtype} and {actions.dtype}")
        self.states = torch.from_numpy(states)
        self.actions = torch.from_numpy(actions)
        self.action_offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.state_offsets = self.action_offsets + np.arange(len(self.lengths))

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def steps(self) -> int:
        return int(self.lengths.sum())

    def select(self, games: Sequence[int] | np.ndarray) -> TransitionGames:
        """The games with the given indices, in that order."""
        games = np.asarray(games, dtype=np.int64)
        lengths = self.lengths[games]
        states = [self.states[o : o + n + 1] for o, n in zip(self.state_offsets[games], lengths, strict=True)]
        actions = [self.actions[o : o + n] for o, n in zip(self.action_offsets[games], lengths, strict=True)]
        return TransitionGames(torch.cat(states).numpy(), torch.cat(actions).numpy(), self.lengths[games])

    def save(self, path: str | os.PathLike, **extra: np.ndarray) -> Path:
        """Write the games (and any ``extra`` per-game arrays) as one compressed ``.npz``, atomically."""
        return atomic_savez(
            path, states=self.states.numpy(), actions=self.actions.numpy(), lengths=self.lengths, **extra
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> TransitionGames:
        arrays = load_npz(path, DATASET_KEYS)
        try:
            return cls(arrays["states"], arrays["actions"], arrays["lengths"])
        except ValueError as error:
            raise ValueError(f"{path}: inconsistent transition dataset ({error})") from error


class TransitionChunk(NamedTuple):
    """(B, L) steps: states s_t (B, L, D), actions a_t (B, L, A), next states s_{t+1}, episode starts and the
    steps that hold a transition (False only for the padding of evaluation streams)."""

    states: torch.Tensor
    actions: torch.Tensor
    next_states: torch.Tensor
    reset: torch.Tensor
    valid: torch.Tensor


def gather_chunk(
    data: TransitionGames,
    episode: np.ndarray,
    position: np.ndarray,
    reset: np.ndarray,
    valid: np.ndarray | None = None,
) -> TransitionChunk:
    """The transitions at (episode, position) of every slot of a (B, L) index grid."""
    state_index = torch.from_numpy(data.state_offsets[episode] + position)
    action_index = torch.from_numpy(data.action_offsets[episode] + position)
    valid = np.ones(episode.shape, dtype=bool) if valid is None else valid
    return TransitionChunk(
        states=data.states[state_index],
        actions=data.actions[action_index],
        next_states=data.states[state_index + 1],
        reset=torch.from_numpy(reset),
        valid=torch.from_numpy(valid),
    )


def evaluation_schedule(lengths: np.ndarray, streams: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every step of every game exactly once, packed into ``streams`` rows: (episode, position, reset, valid)
    arrays of shape (streams, T). Games go longest first to the least-filled row; rows end in padding (valid
    False)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    streams = max(1, min(streams, len(lengths)))
    rows: list[list[int]] = [[] for _ in range(streams)]
    filled = np.zeros(streams, dtype=np.int64)
    for game in np.argsort(-lengths, kind="stable"):
        row = int(np.argmin(filled))
        rows[row].append(int(game))
        filled[row] += lengths[game]
    shape = (streams, int(filled.max()))
    episode, position = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    reset, valid = np.zeros(shape, bool), np.zeros(shape, bool)
    for r, games in enumerate(rows):
        t = 0
        for game in games:
            n = int(lengths[game])
            episode[r, t : t + n] = game
            position[r, t : t + n] = np.arange(n)
            reset[r, t] = True
            valid[r, t : t + n] = True
            t += n
    return episode, position, reset, valid


def joint_action_features(actions: torch.Tensor, n_actions: int, dtype: torch.dtype) -> torch.Tensor:
    """Every agent's action one-hot, concatenated: (..., agents) ints -> (..., agents * n_actions)."""
    return F.one_hot(actions.long(), n_actions).flatten(-2).to(dtype)


def model_inputs(
    model: MDNRNN, layout: StateLayout, chunk: TransitionChunk, n_actions: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """M's inputs for a chunk, on the model's device and dtype: normalised s_t and one-hot a_t."""
    reference = model.head.linear.weight
    states = layout.normalise(chunk.states.to(reference.device), reference.dtype)
    actions = joint_action_features(chunk.actions.to(reference.device), n_actions, reference.dtype)
    return states, actions


def next_state_targets(
    layout: StateLayout, next_states: torch.Tensor, dtype: torch.dtype, generator: torch.Generator | None
) -> torch.Tensor:
    """Normalised s_{t+1}, dequantised with U(-1/2, 1/2) units of noise when a ``generator`` is given."""
    values = next_states.to(dtype)
    if generator is not None:
        noise = torch.rand(values.shape, generator=generator, dtype=dtype) - 0.5
        values = values + noise.to(values.device)
    return layout.normalise(values, dtype)


def mixture_predictions(
    output: MDNOutput, temperature: float = 1.0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mode, sample) of the per-integer mixtures, both (..., D) in normalised units. The mode is the mean of the
    most probable component; the sample draws the component and then the Gaussian (at ``temperature``)."""
    mode = most_likely_mean(output.logits, output.mu).squeeze(-1)
    sample = sample_mixture(output.logits, output.mu, output.log_sigma, temperature, generator).squeeze(-1)
    return mode, sample


MAX_ENUMERATED_HIGH = 255
# Point predictions of predict_next_states, and what each reports.
READOUTS = {
    "component_mean": "mode of the most probable mixture component, rounded",
    "integer_mass": "the integer with the most mixture probability in its rounding interval",
}


def most_probable_integers(output: MDNOutput, layout: StateLayout, base: torch.Tensor | None = None) -> torch.Tensor:
    """The integer each mixture gives the most probability, (..., D) int64 in 0..high.

    Trained on integers dequantised by U(-1/2, 1/2), the mixture's density is a distribution over integers: value v
    gets the mass of its rounding interval [v - 1/2, v + 1/2] (the end values everything beyond, as rounding clips
    there). This is the exact most probable integer, where the mean of the heaviest component (the default mode)
    can miss it: two components near 0 of weight 0.3 each outvote one at 1 of weight 0.4. ``base`` (..., D)
    integers: the mixture models (s_{t+1} - base) / high, as with ``residual`` training.
    """
    if layout.highs.max() > MAX_ENUMERATED_HIGH:
        name = next(n for n, sl in layout.slices.items() if layout.highs[sl].max() > MAX_ENUMERATED_HIGH)
        raise ValueError(
            f"component {name!r} has up to {int(layout.highs.max()) + 1} values, too many to enumerate (at most "
            f"{MAX_ENUMERATED_HIGH + 1}); use the component-mean read-out"
        )
    highs = torch.as_tensor(layout.highs, device=output.mu.device, dtype=output.mu.dtype)
    offset = torch.zeros_like(highs) if base is None else base.to(highs.dtype)
    weights = torch.softmax(output.logits, dim=-1)  # (..., D, K)
    mu, sigma = output.mu.squeeze(-1), output.log_sigma.squeeze(-1).exp()

    def mass_below(value: float) -> torch.Tensor:
        """P(s_{t+1} < value) under the mixture, (..., D)."""
        z = ((value - offset) / highs).unsqueeze(-1).sub(mu).div(sigma)
        return (weights * torch.special.ndtr(z)).sum(-1)

    best = torch.zeros(weights.shape[:-1], dtype=torch.long, device=highs.device)
    best_mass = torch.full(weights.shape[:-1], -1.0, dtype=highs.dtype, device=highs.device)
    below = torch.zeros_like(best_mass)  # P(s_{t+1} < value - 1/2), 0 for the first value: rounding clips at 0
    for value in range(int(layout.highs.max()) + 1):
        last = highs <= value  # the top value takes everything above it
        up_to = torch.where(last, torch.ones_like(best_mass), mass_below(value + 0.5))
        mass = up_to - below
        better = (mass > best_mass) & (highs >= value)
        best = torch.where(better, torch.full_like(best, value), best)
        best_mass = torch.where(better, mass, best_mass)
        below = up_to
    return best


def train_next_state(
    model: MDNRNN,
    data: TransitionGames,
    layout: StateLayout,
    *,
    n_actions: int,
    steps: int,
    batch_size: int,
    seq_len: int,
    lr: float,
    grad_clip: float,
    dequantize: bool,
    seed: int,
    checkpointer: Checkpointer,
    residual: bool = False,
    evaluate: Callable[[int], Mapping[str, float]] | None = None,
    eval_every: int = 0,
    checkpoint_seconds: float = 120.0,
    log_every: int = 50,
    monitor_grads: bool = False,
) -> CurveLog:
    """Teacher-forced training of M on s_{t+1} | s_t, a_t by truncated BPTT over ``batch_size`` streams of whole
    games in ``seq_len``-step chunks (:class:`EpisodeStreams`: the state is carried across chunks, reset at game
    starts); with ``residual`` the mixture models (s_{t+1} - s_t) / high. Every ``eval_every`` steps
    ``evaluate(step)`` adds held-out metrics to the curve. Resumable: the
    checkpoint holds weights, optimiser, data order, generators, the carried core state and the curve."""
    if model.z_dim != layout.size:
        raise ValueError(f"the model predicts {model.z_dim} integers but the layout has {layout.size}")
    reference = model.head.linear.weight
    device, dtype = reference.device, reference.dtype
    no_done = torch.zeros(batch_size, seq_len, device=device)

    def chunk_loss(indices, state, generator):
        chunk = gather_chunk(data, *indices)
        states, actions = model_inputs(model, layout, chunk, n_actions)
        targets = next_state_targets(layout, chunk.next_states, dtype, generator if dequantize else None).to(device)
        if residual:
            targets = targets - states
        output, state = model(states, actions, state, chunk.reset.to(device))
        valid = chunk.valid.to(device)
        loss, _, _ = mdnrnn_loss(output, targets, valid, no_done, torch.zeros_like(valid))
        return loss, state, {"nll": loss.item()}

    return train_by_tbptt(
        model,
        data.lengths,
        chunk_loss,
        steps=steps,
        batch_size=batch_size,
        seq_len=seq_len,
        lr=lr,
        grad_clip=grad_clip,
        seed=seed,
        checkpointer=checkpointer,
        what="next-state M",
        evaluate=evaluate,
        eval_every=eval_every,
        checkpoint_seconds=checkpoint_seconds,
        log_every=log_every,
        monitor_grads=monitor_grads,
    )


class Predictions(NamedTuple):
    """Integer arrays (N, D) over N held-out transitions: the current state s_t (the copy baseline's prediction),
    the true s_{t+1}, and the model's rounded mode and sample."""

    current: np.ndarray
    target: np.ndarray
    mode: np.ndarray
    sample: np.ndarray


@torch.no_grad()
def predict_next_states(
    model: MDNRNN,
    data: TransitionGames,
    layout: StateLayout,
    *,
    n_actions: int,
    streams: int = 64,
    seq_len: int = 100,
    temperature: float = 1.0,
    seed: int = 0,
    residual: bool = False,
    readout: str = "component_mean",
) -> Predictions:
    """Teacher-forced predictions of every transition of ``data``, each game played from its first step
    (``residual``: the model was trained on s_{t+1} - s_t, see :func:`train_next_state`). ``readout`` makes the
    point prediction: ``component_mean`` (the heaviest component's mean, rounded) or ``integer_mass`` (the integer
    with the most probability, :func:`most_probable_integers`)."""
    if readout not in READOUTS:
        raise ValueError(f"unknown read-out {readout!r}; choose from {list(READOUTS)}")
    model.eval()
    episode, position, reset, valid = evaluation_schedule(data.lengths, streams)
    generator = torch.Generator(device=model.head.linear.weight.device).manual_seed(seed)
    state = model.initial_state(episode.shape[0])
    parts: dict[str, list[np.ndarray]] = {name: [] for name in Predictions._fields}
    for start in range(0, episode.shape[1], seq_len):
        window = slice(start, start + seq_len)
        chunk = gather_chunk(data, episode[:, window], position[:, window], reset[:, window], valid[:, window])
        states, actions = model_inputs(model, layout, chunk, n_actions)
        output, state = model(states, actions, state, chunk.reset.to(states.device))
        mode, sample = mixture_predictions(output, temperature, generator)
        if residual:
            mode, sample = states + mode, states + sample
        keep = chunk.valid.to(states.device)
        if readout == "integer_mass":
            base = chunk.states.to(states.device) if residual else None
            mode_integers = most_probable_integers(output, layout, base)[keep]
        else:
            mode_integers = layout.to_integers(mode[keep])
        parts["current"].append(chunk.states[chunk.valid].numpy())
        parts["target"].append(chunk.next_states[chunk.valid].numpy())
        parts["mode"].append(mode_integers.cpu().numpy())
        parts["sample"].append(layout.to_integers(sample[keep]).cpu().numpy())
    return Predictions(*(np.concatenate(parts[name]).astype(np.int16) for name in Predictions._fields))


def _check_pair(predicted: np.ndarray, target: np.ndarray, layout: StateLayout | None = None) -> None:
    if predicted.shape != target.shape or predicted.ndim != 2:
        raise ValueError(f"predictions {predicted.shape} and targets {target.shape} must both be (N, D)")
    if layout is not None and predicted.shape[1] != layout.size:
        raise ValueError(f"state vectors have {predicted.shape[1]} integers but the layout has {layout.size}")


def component_accuracy(predicted: np.ndarray, target: np.ndarray, layout: StateLayout) -> dict[str, float]:
    """Per component, the fraction of transitions whose integers are all predicted exactly."""
    _check_pair(predicted, target, layout)
    equal = predicted == target
    return {name: float(equal[:, sl].all(axis=1).mean()) for name, sl in layout.slices.items()}


def element_accuracy(predicted: np.ndarray, target: np.ndarray, layout: StateLayout) -> dict[str, float]:
    """Per component, the fraction of its integers predicted exactly (over all transitions)."""
    _check_pair(predicted, target, layout)
    equal = predicted == target
    return {name: float(equal[:, sl].mean()) for name, sl in layout.slices.items()}


def overall_accuracy(predicted: np.ndarray, target: np.ndarray) -> float:
    """The fraction of transitions whose whole next state is predicted exactly."""
    _check_pair(predicted, target)
    return float((predicted == target).all(axis=1).mean())


def changed_component_accuracy(
    predicted: np.ndarray, target: np.ndarray, current: np.ndarray, layout: StateLayout
) -> dict[str, float | None]:
    """Per component, the accuracy over the transitions where it changes (s_{t+1} != s_t there), where copying
    s_t is always wrong; ``None`` for a component that never changes."""
    _check_pair(predicted, target, layout)
    _check_pair(current, target, layout)
    equal, same = predicted == target, current == target
    result: dict[str, float | None] = {}
    for name, sl in layout.slices.items():
        changed = ~same[:, sl].all(axis=1)
        result[name] = float(equal[changed, sl].all(axis=1).mean()) if changed.any() else None
    return result


def accuracy_report(predicted: np.ndarray, target: np.ndarray, current: np.ndarray, layout: StateLayout) -> dict:
    """All the accuracies of one prediction: per component, per integer, where it changes, and whole states."""
    return {
        "component_accuracy": component_accuracy(predicted, target, layout),
        "element_accuracy": element_accuracy(predicted, target, layout),
        "changed_component_accuracy": changed_component_accuracy(predicted, target, current, layout),
        "overall_accuracy": overall_accuracy(predicted, target),
    }


def save_comparison_figure(
    reports: Mapping[str, Mapping[str, Any]], baseline: Mapping[str, Any], path: str | os.PathLike, title: str = ""
) -> Path:
    """The thesis-style comparison: per-component accuracy (whole component exact) of each model, e.g.
    ``{"MDN-LSTM": report, "MDN-DNC": report}`` as :func:`accuracy_report` returns them, beside the copy
    baseline; a second panel shows accuracy where the component changes and the whole-state exact match."""
    import matplotlib.pyplot as plt

    from dreamlab.figures import save_figure

    labelled = {**reports, "copy s_t": baseline}
    names = list(baseline["component_accuracy"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(10, 0.45 * len(names)), 9), sharex=True)
    width = 0.8 / len(labelled)
    x = np.arange(len(names) + 1)
    for i, (label, report) in enumerate(labelled.items()):
        offsets = x + (i - (len(labelled) - 1) / 2) * width
        whole = [report["component_accuracy"][n] for n in names] + [report["overall_accuracy"]]
        top.bar(offsets, whole, width, label=label, color="0.7" if label == "copy s_t" else None)
        changed = [report["changed_component_accuracy"][n] for n in names]
        changed = [np.nan if v is None else v for v in changed] + [np.nan]
        if label != "copy s_t":
            bottom.bar(offsets, changed, width, label=label)
    top.set_ylabel("accuracy (component exact)")
    top.set_ylim(0, 1.02)
    top.legend(loc="lower left", fontsize=8)
    top.grid(axis="y", alpha=0.3)
    bottom.set_ylabel("accuracy where it changes")
    bottom.set_ylim(0, 1.02)
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(x)
    bottom.set_xticklabels([*names, "WHOLE STATE"], rotation=70, ha="right", fontsize=8)
    fig.suptitle(title or "Next-state prediction: accuracy per component (mode of the mixture, rounded)")
    return save_figure(fig, path)

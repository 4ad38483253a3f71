"""Training chunks for M: truncated backpropagation through time over streams of whole episodes.

Each of B streams plays the (shuffled) episodes one after the other; a training chunk is the next L steps of every
stream. The recurrent state is carried from one chunk to the next (detached: the truncation) and reset where a
stream starts a new episode, so every step of every episode is trained on with its true history up to the chunk
boundary, and no step is padding. z is drawn afresh from V's stored mean and log-variance for every chunk, a
cheap form of data augmentation that Ha & Schmidhuber use as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch


class LatentEpisodes:
    """V's encoding of every rollout, concatenated: mu, logvar (N, D), actions (N,) or (N, A), dones (N,)."""

    def __init__(
        self,
        mu: Sequence[np.ndarray],
        logvar: Sequence[np.ndarray],
        actions: Sequence[np.ndarray],
        dones: Sequence[np.ndarray],
    ):
        if not (len(mu) == len(logvar) == len(actions) == len(dones)) or len(mu) == 0:
            raise ValueError("need the same positive number of mu, logvar, actions and dones arrays")
        self.lengths = np.asarray([len(m) for m in mu], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.mu = torch.from_numpy(np.concatenate(mu).astype(np.float32))
        self.logvar = torch.from_numpy(np.concatenate(logvar).astype(np.float32))
        self.actions = torch.from_numpy(np.concatenate(actions))
        self.dones = torch.from_numpy(np.concatenate(dones).astype(bool))

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def steps(self) -> int:
        return int(self.lengths.sum())

    def first_frames(self) -> tuple[torch.Tensor, torch.Tensor]:
        """mu and logvar of every episode's first frame, (episodes, D): where dreams start."""
        index = torch.from_numpy(self.offsets)
        return self.mu[index], self.logvar[index]


class Chunk(NamedTuple):
    """One TBPTT chunk, all (B, L, ...): z_t inputs, actions, z_{t+1} targets and masks, done targets, resets."""

    z: torch.Tensor
    actions: torch.Tensor
    z_next: torch.Tensor
    z_mask: torch.Tensor
    done: torch.Tensor
    reset: torch.Tensor


class EpisodeStreams:
    """Deals consecutive L-step chunks from ``batch_size`` streams of shuffled episodes; resumable."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seq_len: int, seed: int):
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size} and {seq_len}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.seq_len = batch_size, seq_len
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.lengths))
        self.pointer = 0
        self.epoch = 0
        self.episode = np.full(batch_size, -1, dtype=np.int64)  # current episode of each stream, -1 none yet
        self.position = np.zeros(batch_size, dtype=np.int64)

    def _next_episode(self) -> int:
        if self.pointer == len(self.order):
            self.order = self.rng.permutation(len(self.lengths))
            self.pointer = 0
            self.epoch += 1
        episode = int(self.order[self.pointer])
        self.pointer += 1
        return episode

    @property
    def progress(self) -> float:
        """Epochs completed, fractionally (episodes handed out / episodes)."""
        return self.epoch + self.pointer / len(self.order)

    def next_indices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(episode, position, reset) arrays of shape (B, L) for the next chunk."""
        shape = (self.batch_size, self.seq_len)
        episode, position, reset = np.empty(shape, np.int64), np.empty(shape, np.int64), np.zeros(shape, bool)
        for b in range(self.batch_size):
            t = 0
            while t < self.seq_len:
                if self.episode[b] < 0 or self.position[b] >= self.lengths[self.episode[b]]:
                    self.episode[b], self.position[b] = self._next_episode(), 0
                    reset[b, t] = True
                n = min(self.seq_len - t, int(self.lengths[self.episode[b]] - self.position[b]))
                episode[b, t : t + n] = self.episode[b]
                position[b, t : t + n] = np.arange(self.position[b], self.position[b] + n)
                self.position[b] += n
                t += n
        return episode, position, reset

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "order": self.order.copy(),
            "pointer": self.pointer,
            "epoch": self.epoch,
            "episode": self.episode.copy(),
            "position": self.position.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.order = np.asarray(state["order"], dtype=np.int64)
        self.pointer, self.epoch = int(state["pointer"]), int(state["epoch"])
        self.episode = np.asarray(state["episode"], dtype=np.int64)
        self.position = np.asarray(state["position"], dtype=np.int64)


def make_chunk(
    data: LatentEpisodes,
    episode: np.ndarray,
    position: np.ndarray,
    reset: np.ndarray,
    generator: torch.Generator,
) -> Chunk:
    """Gather a chunk and draw its z's: inputs z_t and targets z_{t+1} share one draw per frame."""
    flat = torch.from_numpy(data.offsets[episode] + position)
    has_next = torch.from_numpy(position + 1 < data.lengths[episode])
    # Frames t and t+1 of every slot; the last slot's successor is drawn too (clamped where it does not exist).
    extended = torch.cat([flat, flat[:, -1:] + 1], dim=1).clamp_max(len(data.mu) - 1)
    mu, logvar = data.mu[extended], data.logvar[extended]
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator)
    return Chunk(
        z=z[:, :-1],
        actions=data.actions[flat],
        z_next=z[:, 1:],
        z_mask=has_next,
        done=data.dones[flat],
        reset=torch.from_numpy(reset),
    )

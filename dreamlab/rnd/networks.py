"""Networks of PPO + RND: a two-headed actor-critic and the target/predictor pair (Burda et al., appendix A.5).

Image observations (C, H, W) go through the paper's convolutions (32 8x8/4, 64 4x4/2, 64 3x3/1, as in the DQN
Atari network); vector observations through a dense layer, so the same agent runs on any discrete-action
gymnasium environment.
"""

from __future__ import annotations

import math

import torch
from torch import nn

MIN_IMAGE_SIDE = 36  # the three convolutions need at least 36 x 36 input pixels


def _init(layer: nn.Module, gain: float) -> nn.Module:
    """Orthogonal weights and zero biases, the initialisation of the paper's code."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def encoder(obs_shape: tuple[int, ...], activation: type[nn.Module], vector_width: int = 256) -> tuple[nn.Module, int]:
    """Feature extractor for one observation shape and its output width.

    (C, H, W) -> the paper's three convolutions, flattened; (D,) -> one dense layer of ``vector_width``.
    """
    gain = math.sqrt(2)
    if len(obs_shape) == 3:
        channels, height, width = obs_shape
        if min(height, width) < MIN_IMAGE_SIDE:
            raise ValueError(f"image observations must be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}, got {obs_shape}")
        convs = nn.Sequential(
            _init(nn.Conv2d(channels, 32, 8, stride=4), gain),
            activation(inplace=True),
            _init(nn.Conv2d(32, 64, 4, stride=2), gain),
            activation(inplace=True),
            _init(nn.Conv2d(64, 64, 3, stride=1), gain),
            activation(inplace=True),
            nn.Flatten(),
        )
        convs.to(memory_format=torch.channels_last)  # weights in the layout of the inputs (see as_float_input)
        with torch.no_grad():
            width_out = convs(torch.zeros(1, *obs_shape)).shape[1]
        return convs, width_out
    if len(obs_shape) == 1:
        return nn.Sequential(_init(nn.Linear(obs_shape[0], vector_width), gain), activation()), vector_width
    raise ValueError(f"observations must be images (C, H, W) or vectors (D,), got shape {obs_shape}")


def as_float_input(obs: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """uint8 pixels to [0, 1]; other observations cast to the network dtype. Images come out channels-last.

    Channels-last (NHWC) strides make the CPU convolutions (oneDNN) about 1.5x faster forward and backward than
    NCHW and are the fast layout on CUDA too; the values are unchanged. The layout is set on the uint8 input
    (4x less memory to move) and the scale is applied in place to avoid a second float copy.
    """
    if obs.dim() == 4:
        obs = obs.contiguous(memory_format=torch.channels_last)
    if obs.dtype == torch.uint8:
        return obs.to(dtype).mul_(1.0 / 255.0)
    return obs.to(dtype)


class ActorCritic(nn.Module):
    """Policy logits and two value heads, V_E (episodic extrinsic) and V_I (non-episodic intrinsic).

    With ``recurrent=True`` a GRU sits between the torso and the heads; its state is reset to zero at the first
    step of every episode. :meth:`forward` always takes a time axis: obs (T, B, *obs_shape), episode_starts (T, B).
    """

    def __init__(self, obs_shape: tuple[int, ...], num_actions: int, hidden: int = 448, recurrent: bool = False):
        super().__init__()
        gain = math.sqrt(2)
        self.encoder, width = encoder(obs_shape, nn.ReLU)
        self.torso = nn.Sequential(
            _init(nn.Linear(width, 256), gain), nn.ReLU(), _init(nn.Linear(256, hidden), gain), nn.ReLU()
        )
        self.hidden_size = hidden
        self.gru = nn.GRU(hidden, hidden) if recurrent else None
        # Residual extra layers per head, as in the paper's policy network.
        self.policy_extra = _init(nn.Linear(hidden, hidden), 0.1)
        self.value_extra = _init(nn.Linear(hidden, hidden), 0.1)
        self.policy_head = _init(nn.Linear(hidden, num_actions), 0.01)
        self.value_ext_head = _init(nn.Linear(hidden, 1), 0.01)
        self.value_int_head = _init(nn.Linear(hidden, 1), 0.01)

    @property
    def recurrent(self) -> bool:
        return self.gru is not None

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The GRU state of a fresh episode, (B, hidden); an empty (B, 0) tensor for the feed-forward policy."""
        return torch.zeros(batch, self.hidden_size if self.recurrent else 0, device=device, dtype=dtype)

    def forward(
        self, obs: torch.Tensor, episode_starts: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits (T, B, A), V_E (T, B), V_I (T, B), final recurrent state (B, hidden))."""
        steps, batch = obs.shape[:2]
        dtype = self.policy_head.weight.dtype
        x = self.torso(self.encoder(as_float_input(obs.flatten(0, 1), dtype))).view(steps, batch, -1)
        if self.gru is not None:
            outputs = []
            keep = (~episode_starts.bool()).to(dtype).unsqueeze(-1)
            for t in range(steps):
                state = state * keep[t]
                out, h = self.gru(x[t : t + 1], state.unsqueeze(0).contiguous())
                state = h.squeeze(0)
                outputs.append(out)
            x = torch.cat(outputs)
        policy_features = x + torch.relu(self.policy_extra(x))
        value_features = x + torch.relu(self.value_extra(x))
        logits = self.policy_head(policy_features)
        value_ext = self.value_ext_head(value_features).squeeze(-1)
        value_int = self.value_int_head(value_features).squeeze(-1)
        return logits, value_ext, value_int, state


class RandomNetworkDistillation(nn.Module):
    """A fixed, randomly initialised target f and a trained predictor f_hat on single normalised frames.

    The intrinsic reward of a state is ||f_hat(x) - f(x)||^2 (averaged over the output features): large for
    states unlike those the predictor was trained on (Burda et al., section 2.2). The target's parameters have
    ``requires_grad=False`` and are never handed to an optimiser. Leaky ReLUs as in the paper's code.
    """

    def __init__(self, obs_shape: tuple[int, ...], output_size: int = 512):
        super().__init__()
        gain = math.sqrt(2)
        target_encoder, width = encoder(obs_shape, nn.LeakyReLU)
        self.target = nn.Sequential(target_encoder, _init(nn.Linear(width, output_size), gain))
        predictor_encoder, width = encoder(obs_shape, nn.LeakyReLU)
        self.predictor = nn.Sequential(
            predictor_encoder,
            _init(nn.Linear(width, 512), gain),
            nn.ReLU(),
            _init(nn.Linear(512, 512), gain),
            nn.ReLU(),
            _init(nn.Linear(512, output_size), gain),
        )
        self.target.requires_grad_(False)

    def forward(self, normalized_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted features, target features) of a batch of normalised frames."""
        normalized_obs = as_float_input(normalized_obs, self.predictor[-1].weight.dtype)
        with torch.no_grad():
            target = self.target(normalized_obs)
        return self.predictor(normalized_obs), target

    @torch.no_grad()
    def intrinsic_reward(self, normalized_obs: torch.Tensor) -> torch.Tensor:
        """Per-sample prediction error, the unnormalised intrinsic reward."""
        predicted, target = self(normalized_obs)
        return (predicted - target).square().mean(dim=-1)

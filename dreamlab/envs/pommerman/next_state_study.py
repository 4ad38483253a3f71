"""The MDN-DNC thesis' Pommerman study: how well does an MDN-LSTM or an MDN-DNC predict the next game state?

Games of simple, mixed and random agents are collected once into data_dir (shared by both cores); the model (World
Models' M with the chosen core) learns s_{t+1} from [s_t, a_t] by teacher forcing
(:func:`dreamlab.worldmodels.next_state.train_next_state`); the held-out games' transitions are then predicted (mode
and sample of the mixture, rounded) and compared with the truth per component and as a whole state, beside the
copy-s_t baseline.

    from dreamlab.config import make_config
    from dreamlab.envs.pommerman.next_state_study import PRESETS, NextStateConfig, run
    metrics = run(make_config(NextStateConfig, PRESETS, "fast", core="dnc"))

A run resumes from run_dir/checkpoint.pt (default runs/pommerman/<name>); a larger ``steps`` continues a finished
run. It writes <results_dir>/pommerman/<name>.json and <name>_curve.csv.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from dreamlab.checkpoint import Checkpointer
from dreamlab.config import RunConfig, config_dict, non_negative, positive
from dreamlab.envs.pommerman import POLICIES
from dreamlab.envs.pommerman.constants import NUM_ACTIONS
from dreamlab.envs.pommerman.encoding import COMPONENTS, MODEL_COMPONENTS, STATE_SIZE, encode_games, render_board
from dreamlab.files import atomic_write_json
from dreamlab.parallel import WorkerPool
from dreamlab.results import StageTimer, write_result
from dreamlab.runs import UserError, check_finite_module, run_directory
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything, set_threads
from dreamlab.worldmodels import MDNRNN
from dreamlab.worldmodels.next_state import (
    READOUTS,
    Predictions,
    StateLayout,
    TransitionGames,
    accuracy_report,
    predict_next_states,
    train_next_state,
)

Core = Literal["lstm", "dnc"]
CORES: tuple[str, ...] = typing.get_args(Core)
# Seeds of the games: test games never share a board with training games.
SPLIT_SEED_BASE = {"train": 0, "test": 500_000_000}
POLICY_SEED_STRIDE, CHUNK_SEED_STRIDE = 10_000_000, 100_000


@dataclasses.dataclass
class NextStateConfig(RunConfig):
    """Next-state prediction on Pommerman with an MDN-LSTM or an MDN-DNC (same sizes, same training)."""

    core: Core = "lstm"
    # Data: games of each policy, in shares of the steps
    policies: tuple[str, ...] = ("simple", "mixed", "random")
    policy_shares: tuple[float, ...] = (0.5, 0.25, 0.25)
    train_steps: int = 240_000
    test_steps: int = 30_000
    chunk_steps: int = 10_000  # steps per collection work item
    workers: int = 0  # collection processes (0 = this process)
    data_dir: str = "runs/pommerman/datasets"  # collected games, shared by runs with the same data settings
    # Model
    hidden_size: int = 128
    n_components: int = 3
    dnc_memory_slots: int = 16
    dnc_word_size: int = 16
    dnc_read_heads: int = 4
    # Training
    steps: int = 1200
    batch_size: int = 32
    seq_len: int = 32
    lr: float = 1e-3
    grad_clip: float = 1.0
    dequantize: bool = True
    residual: bool = False  # the mixture models s_{t+1} - s_t (see dreamlab.worldmodels.next_state and the docs)
    input_skip: bool = False  # each integer's mixture also sees its own s_t value and a_t (MDNRNN's InputSkip)
    # Evaluation
    eval_every: int = 200
    eval_steps: int = 5000  # held-out transitions for the learning curve's evaluations
    eval_streams: int = 64
    temperature: float = 1.0
    # Redraw the predicted board's bomb, flame and agent codes from the predicted bombs, flames and agents (the
    # game draws them so); the model's own board prediction is reported as metrics.unrendered.
    render_board: bool = False
    # The point prediction: component_mean (the heaviest component's mean, rounded) or integer_mass (the integer
    # the mixture gives the most probability; dreamlab.worldmodels.next_state.most_probable_integers)
    readout: Literal["component_mean", "integer_mass"] = "component_mean"
    threads: int = 1  # torch threads; 0 = torch's default
    checkpoint_seconds: float = 120.0

    RESUMABLE_FIELDS = (
        "data_dir",
        "steps",
        "eval_every",
        "eval_steps",
        "eval_streams",
        "temperature",
        "render_board",
        "readout",
        "checkpoint_seconds",
    )

    def validate(self) -> None:
        super().validate()
        positive(self, "train_steps", "test_steps", "chunk_steps", "hidden_size", "n_components", "steps")
        positive(self, "dnc_memory_slots", "dnc_word_size", "dnc_read_heads", "batch_size", "seq_len", "lr")
        positive(self, "eval_every", "eval_steps", "eval_streams", "temperature")
        non_negative(self, "workers", "grad_clip", "checkpoint_seconds")
        unknown = [p for p in self.policies if p not in POLICIES]
        if unknown or not self.policies:
            raise UserError(f"--policies {list(self.policies)}: choose from {list(POLICIES)}")
        if len(self.policies) != len(self.policy_shares) or min(self.policy_shares) <= 0:
            raise UserError("--policy_shares needs one positive share per policy")


PRESETS = {
    "smoke": {
        "train_steps": 600,
        "test_steps": 200,
        "chunk_steps": 300,
        "hidden_size": 16,
        "n_components": 2,
        "dnc_memory_slots": 8,
        "dnc_word_size": 8,
        "dnc_read_heads": 2,
        "steps": 4,
        "batch_size": 4,
        "seq_len": 8,
        "eval_every": 2,
        "eval_steps": 100,
        "eval_streams": 8,
    },
    "fast": {},
    "paper": {
        "train_steps": 1_000_000,
        "test_steps": 100_000,
        "hidden_size": 256,
        "n_components": 5,
        "steps": 20_000,
        "batch_size": 64,
        "seq_len": 64,
        "eval_every": 1000,
        "eval_steps": 20_000,
    },
}


def result_name(config: NextStateConfig) -> str:
    suffix = "" if config.preset == "fast" else f"_{config.preset}"
    return config.name or f"next_state_{config.core}{suffix}"


def _collect_chunk(item: tuple[str, int, int]) -> dict:
    policy, seed, steps = item
    return encode_games(policy, seed, steps)


def collect_dataset(config: NextStateConfig, split: str, steps: int, path: Path, log=print) -> TransitionGames:
    """The split's games, read from ``path`` or collected (in ``chunk_steps`` work items) and saved there."""
    if path.is_file():
        return TransitionGames.load(path)
    shares = np.asarray(config.policy_shares) / sum(config.policy_shares)
    items = []
    for policy, share in zip(config.policies, shares, strict=True):
        policy_steps = max(1, round(steps * share))
        chunks = -(-policy_steps // config.chunk_steps)
        base = SPLIT_SEED_BASE[split] + config.seed * 1_000_000_000 + POLICY_SEED_STRIDE * POLICIES.index(policy)
        items += [(policy, base + CHUNK_SEED_STRIDE * c, min(config.chunk_steps, policy_steps)) for c in range(chunks)]
    log(f"collecting {steps} {split} steps of {list(config.policies)} games in {len(items)} work items")
    with WorkerPool(config.workers) as pool:
        parts = pool.map(_collect_chunk, items)
    games = TransitionGames(
        np.concatenate([part["states"] for part in parts]),
        np.concatenate([part["actions"] for part in parts]),
        np.concatenate([part["lengths"] for part in parts]),
    )
    policy_of_game = np.concatenate(
        [np.full(len(part["lengths"]), POLICIES.index(item[0])) for part, item in zip(parts, items, strict=True)]
    )
    games.save(path, seeds=np.concatenate([part["seeds"] for part in parts]), policies=policy_of_game)
    return games


def dataset_path(config: NextStateConfig, split: str, steps: int) -> Path:
    mix = "-".join(f"{p}{s:g}" for p, s in zip(config.policies, config.policy_shares, strict=True))
    return Path(config.data_dir) / f"{split}_{steps}_{mix}_chunk{config.chunk_steps}_seed{config.seed}.npz"


def build_model(config: NextStateConfig, layout: StateLayout) -> MDNRNN:
    options = (
        {
            "memory_slots": config.dnc_memory_slots,
            "word_size": config.dnc_word_size,
            "read_heads": config.dnc_read_heads,
        }
        if config.core == "dnc"
        else {}
    )
    return MDNRNN(
        layout.size,
        4 * NUM_ACTIONS,
        config.hidden_size,
        config.n_components,
        core=config.core,
        predict_done=False,
        core_options=options,
        input_skip=config.input_skip,
    )


def subset(games: TransitionGames, steps: int) -> TransitionGames:
    """The first games of ``games`` holding at least ``steps`` steps (all of them if fewer)."""
    count = int(np.searchsorted(np.cumsum(games.lengths), steps) + 1)
    return games.select(np.arange(min(count, len(games))))


def run(config: NextStateConfig, figures: Callable[[Path, str, NextStateConfig], None] | None = None) -> dict:
    """Collect (or read) the games, train (or resume) M in ``config.run_dir`` (default runs/pommerman/<name>), test
    it, write the result, then call ``figures(out_dir, name, config)``; returns the result's metrics."""
    name = result_name(config)
    run_dir = Path(config.run_dir or f"runs/pommerman/{name}")
    out_dir = Path(config.results_dir) / "pommerman"
    with run_directory(run_dir, out_dir, config.data_dir):
        metrics = _run(config, name, run_dir, out_dir)
    if figures is not None:
        figures(out_dir, name, config)
    return metrics


def _run(config: NextStateConfig, name: str, run_dir: Path, out_dir: Path) -> dict:
    set_threads(config.threads)
    seed_everything(config.seed)
    device, dtype = resolve_device(config.device), resolve_dtype(config.dtype)
    atomic_write_json(run_dir / "config.json", config_dict(config))
    # Stage times accumulate across resumed runs (a stage killed part-way loses only its unfinished share).
    timer, timer_path = StageTimer(), run_dir / "stage_seconds.json"
    if timer_path.is_file():
        timer.load_state_dict(json.loads(timer_path.read_text()))

    # The model sees and predicts the game state without the clock and the previous actions.
    full = StateLayout(COMPONENTS)
    layout = StateLayout([c for c in COMPONENTS if c.name in MODEL_COMPONENTS])
    columns = np.concatenate([np.arange(STATE_SIZE)[full.slices[n]] for n in layout.names])

    with timer.stage("collect"):
        splits = {}
        for split, steps in (("train", config.train_steps), ("test", config.test_steps)):
            games = collect_dataset(config, split, steps, dataset_path(config, split, steps))
            splits[split] = TransitionGames(games.states[:, columns].numpy(), games.actions.numpy(), games.lengths)
    train, test = splits["train"], splits["test"]
    print(f"data: {train.steps} training transitions in {len(train)} games, {test.steps} test in {len(test)}")

    model = build_model(config, layout).to(device=device, dtype=dtype)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"MDN-{config.core.upper()}: {parameters} parameters, {layout.size} integers per state")
    curve_test = subset(test, config.eval_steps)

    def predict(games: TransitionGames, seed: int):
        return predict_next_states(
            model,
            games,
            layout,
            n_actions=NUM_ACTIONS,
            streams=config.eval_streams,
            temperature=config.temperature,
            seed=seed,
            residual=config.residual,
            readout=config.readout,
        )

    def drawn(predictions: Predictions) -> Predictions:
        """With --render_board: the predicted boards' bomb, flame and agent codes redrawn from the other components."""
        if not config.render_board:
            return predictions
        return predictions._replace(
            **{k: render_board(getattr(predictions, k), layout.slices) for k in ("mode", "sample")}
        )

    def evaluate(step: int) -> dict[str, float]:
        predictions = drawn(predict(curve_test, config.seed + step))
        report = accuracy_report(predictions.mode, predictions.target, predictions.current, layout)
        changed = [v for v in report["changed_component_accuracy"].values() if v is not None]
        return {
            "test_overall_accuracy": report["overall_accuracy"],
            "test_mean_component_accuracy": float(np.mean(list(report["component_accuracy"].values()))),
            "test_mean_element_accuracy": float(np.mean(list(report["element_accuracy"].values()))),
            "test_mean_changed_accuracy": float(np.mean(changed)) if changed else float("nan"),
        }

    with timer.stage("train"):
        curve = train_next_state(
            model,
            train,
            layout,
            n_actions=NUM_ACTIONS,
            steps=config.steps,
            batch_size=config.batch_size,
            seq_len=config.seq_len,
            lr=config.lr,
            grad_clip=config.grad_clip,
            dequantize=config.dequantize,
            residual=config.residual,
            seed=config.seed,
            checkpointer=Checkpointer(run_dir, config),
            evaluate=evaluate,
            eval_every=config.eval_every,
            checkpoint_seconds=config.checkpoint_seconds,
            monitor_grads=config.log_grads,
        )
    check_finite_module(model, f"MDN-{config.core.upper()} after training")
    atomic_write_json(timer_path, timer.state_dict())
    curve.to_csv(out_dir / f"{name}_curve.csv")

    with timer.stage("evaluate"):
        raw = predict(test, config.seed)
    predictions = drawn(raw)
    mode = accuracy_report(predictions.mode, predictions.target, predictions.current, layout)
    sample = accuracy_report(predictions.sample, predictions.target, predictions.current, layout)
    copy = accuracy_report(predictions.current, predictions.target, predictions.current, layout)
    metrics = {
        **mode,
        "prediction": READOUTS[config.readout],
        "sampled": sample,
        "copy_baseline": copy,
        "board_rendered_from_components": config.render_board,
        **({"unrendered": accuracy_report(raw.mode, raw.target, raw.current, layout)} if config.render_board else {}),
        "parameters": parameters,
        "state_integers": layout.size,
        "trained_transitions": config.steps * config.batch_size * config.seq_len,
        "epochs": round(config.steps * config.batch_size * config.seq_len / train.steps, 3),
        "train_transitions": train.steps,
        "train_games": len(train),
        "test_transitions": test.steps,
        "test_games": len(test),
        "final_train_nll": curve.rows[-1]["nll"] if curve.rows else None,
    }
    path = write_result(
        "pommerman",
        name,
        experiment="pommerman_next_state",
        config=config,
        metrics=metrics,
        wall_seconds=timer.total,
        stages=timer.seconds,
        results_dir=config.results_dir,
    )
    print(
        f"{name}: whole-state accuracy {mode['overall_accuracy']:.4f} (copy {copy['overall_accuracy']:.4f}); "
        f"wrote {path}"
    )
    return metrics

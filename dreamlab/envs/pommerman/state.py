"""The game state: board, agents, bombs, flames, hidden power-ups and the step count."""

from __future__ import annotations

from dataclasses import dataclass, field

from dreamlab.envs.pommerman.constants import DEFAULT_AMMO, DEFAULT_BLAST_STRENGTH, FLAME_LIFE

Position = tuple[int, int]


@dataclass(slots=True)
class Bomber:
    """One agent's body: where it is and what it carries."""

    agent_id: int
    position: Position
    ammo: int = DEFAULT_AMMO
    blast_strength: int = DEFAULT_BLAST_STRENGTH
    can_kick: bool = False
    is_alive: bool = True


@dataclass(slots=True)
class Bomb:
    """A bomb; ``moving_direction`` is an ``Action`` value (1-4) while it slides after a kick, else None."""

    position: Position
    bomber_id: int
    life: int
    blast_strength: int
    moving_direction: int | None = None


@dataclass(slots=True)
class Flame:
    """One flame cell; several flames may share a cell when explosions overlap."""

    position: Position
    life: int = FLAME_LIFE


@dataclass
class GameState:
    """Everything the forward model needs. ``board`` is a list of rows of ``Item`` codes; ``items`` maps a
    wooden wall's position to the power-up hidden under it, in the order they were laid."""

    board: list[list[int]]
    agents: list[Bomber]
    bombs: list[Bomb] = field(default_factory=list)
    flames: list[Flame] = field(default_factory=list)
    items: dict[Position, int] = field(default_factory=dict)
    step_count: int = 0
    intended_actions: list[int] = field(default_factory=list)

    @property
    def board_size(self) -> int:
        return len(self.board)

    def copy(self) -> GameState:
        """An independent deep copy (for planning or branching rollouts)."""
        return GameState(
            board=[row[:] for row in self.board],
            agents=[
                Bomber(a.agent_id, a.position, a.ammo, a.blast_strength, a.can_kick, a.is_alive) for a in self.agents
            ],
            bombs=[Bomb(b.position, b.bomber_id, b.life, b.blast_strength, b.moving_direction) for b in self.bombs],
            flames=[Flame(f.position, f.life) for f in self.flames],
            items=dict(self.items),
            step_count=self.step_count,
            intended_actions=list(self.intended_actions),
        )

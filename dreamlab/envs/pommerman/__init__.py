"""Pommerman FFA (PommeFFACompetition-v0): a faithful re-implementation of the playground's game.

``Pommerman`` is the environment; ``make_agents`` builds teams of ``RandomAgent``/``SimpleAgent``; states move
in and out through the playground's JSON snapshots (``get_json_info`` / ``set_json_info``), and
``PlaygroundPommerman`` runs the same API on the real ``pommerman`` package when it is installed.
"""

from dreamlab.envs.pommerman.agents import POLICIES, Agent, RandomAgent, make_agents
from dreamlab.envs.pommerman.constants import MAX_STEPS, Action, Item, Result
from dreamlab.envs.pommerman.env import Pommerman
from dreamlab.envs.pommerman.json_state import from_json_info, to_json_info
from dreamlab.envs.pommerman.playground import PlaygroundPommerman, make_env, playground_available
from dreamlab.envs.pommerman.rollout import load_games, play_game, play_games, save_games
from dreamlab.envs.pommerman.simple_agent import SimpleAgent
from dreamlab.envs.pommerman.state import Bomb, Bomber, Flame, GameState
from dreamlab.envs.pommerman.text import board_to_text, state_from_text

__all__ = [
    "MAX_STEPS",
    "POLICIES",
    "Action",
    "Agent",
    "Bomb",
    "Bomber",
    "Flame",
    "GameState",
    "Item",
    "PlaygroundPommerman",
    "Pommerman",
    "RandomAgent",
    "Result",
    "SimpleAgent",
    "board_to_text",
    "from_json_info",
    "load_games",
    "make_agents",
    "make_env",
    "play_game",
    "play_games",
    "playground_available",
    "save_games",
    "state_from_text",
    "to_json_info",
]

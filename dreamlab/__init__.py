"""dreamlab: World Models, MDN-DNC, CMA-ES, MDNs, PPO+RND, SNcGAN and DRAW in PyTorch."""

__version__ = "0.1.0"

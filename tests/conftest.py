"""Test-session settings shared by every test file."""

import torch

# One intra-op thread: the test models are small, where extra OpenMP threads cost more in synchronisation than they
# gain (and spin badly on a busy machine), and a fixed thread count makes seeded training checks reproduce exactly
# on any machine, since float reductions split across threads sum in a different order.
torch.set_num_threads(1)

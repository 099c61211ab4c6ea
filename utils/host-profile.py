"""Where a cached fusedops call spends its host time: cProfile of back-to-back calls.

Run on a GPU machine: ``python3 utils/host-profile.py [calls]``. Prints the functions with the
most own time; the notes in docs/perf/python-api.md quote it.
"""

import cProfile
import pstats
import sys

import torch

import fusedops
import fusedops.nn

calls = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
x = torch.randn(1, 16, 1024, device="cuda", dtype=torch.bfloat16)
w = torch.ones(1024, device="cuda", dtype=torch.bfloat16)
cos, sin = (t.cuda() for t in fusedops.nn.rope_tables(16, 128, 10000.0, "neox"))


def call():
    return fusedops.fused_rmsnorm_rope(x, w, cos, sin, eps=1e-6, head_dim=128)


for _ in range(50):
    call()
torch.cuda.synchronize()
profile = cProfile.Profile()
profile.enable()
for _ in range(calls):
    call()
profile.disable()
torch.cuda.synchronize()
pstats.Stats(profile).sort_stats("tottime").print_stats(18)

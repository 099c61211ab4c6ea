#!/usr/bin/env python3
"""One call of each GEMM op at issue 10's main shapes, for a profiler to look at.

    ncu --clock-control none --set full -k regex:'gated_mlp|fp8_gemm' -c 2 \
        python3 utils/profile-gemm.py

Compiles and warms up first (the profiled launches are the last ones); prints nothing.
"""

import fusedops
import torch

x = torch.randn(16384, 4096, device="cuda", dtype=torch.bfloat16)
wg = torch.randn(11264, 4096, device="cuda", dtype=torch.bfloat16) * 4096**-0.5
wu = torch.randn(11264, 4096, device="cuda", dtype=torch.bfloat16) * 4096**-0.5
a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
qa, sa = fusedops.quantize_fp8(a, granularity="tensor")
torch.cuda.synchronize()
for _ in range(2):
    fusedops.fused_gated_mlp(x, wg, wu, "silu")
    fusedops.fp8_gemm(qa, qa, a_scale=sa, b_scale=sa, granularity="tensor")
torch.cuda.synchronize()

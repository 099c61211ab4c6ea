"""The fusedops benchmark suite: ``python -m fusedops.bench [op ...] [--out DIR]``.

For each operator and a set of Llama-like shapes it times fusedops against PyTorch eager,
torch.compile and, for the GEMMs, cuBLAS (torch.matmul) and cuBLASLt FP8 (torch._scaled_mm), all
in one run on one card. Every measured output is first checked against a float64 reference; a
result that fails the check is reported as such and not timed. Times are medians of CUDA-event
timings after warm-up, with the L2 cache flushed before each timed call. Rates are reported as %
of ceilings measured in the same run: copy bandwidth (a 1 GiB device-to-device copy) for the
memory-bound ops, the bf16 dense GEMM rate (cuBLAS, 8192³) for the gated MLP and the FP8 one
(cuBLASLt, 8192³) for fp8_gemm.

Outputs: a markdown table on stdout and in ``DIR/bench.md``, ``DIR/bench.json``, and, when
matplotlib is installed, ``DIR/bench.png``.
"""

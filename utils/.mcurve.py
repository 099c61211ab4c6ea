import torch, fusedops, fusedops.bench.cases as c
K,N=4096,11008
wg=torch.randn(N,K,device='cuda',dtype=torch.bfloat16)*K**-0.5; wu=torch.randn(N,K,device='cuda',dtype=torch.bfloat16)*K**-0.5
for m in (1,2,4,8,16,32,64):
    x=torch.randn(m,K,device='cuda',dtype=torch.bfloat16)
    t=c.time_ms(lambda: fusedops.fused_gated_mlp(x,wg,wu,"silu"),repeat=30)
    xs=torch.randn(64,K,device='cuda',dtype=torch.bfloat16)[:m]
    print(f"M={m}: {t*1e3:.1f} us", flush=True)

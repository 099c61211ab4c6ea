import torch
def t(f, n=30):
    s=[torch.cuda.Event(enable_timing=True) for _ in range(n)]; e=[torch.cuda.Event(enable_timing=True) for _ in range(n)]
    flush=torch.empty(256<<20, dtype=torch.uint8, device='cuda')
    for i in range(n):
        flush.zero_(); s[i].record(); f(); e[i].record()
    torch.cuda.synchronize(); v=sorted(a.elapsed_time(b) for a,b in zip(s,e)); return v[n//2]
for mb in (45, 180, 1024):
    x=torch.randn(mb<<19, device='cuda', dtype=torch.bfloat16)  # mb MB
    y=torch.empty_like(x)
    ms=t(lambda: y.copy_(x)); print(f"copy {mb} MB: {ms*1e3:.1f} us, {2*x.numel()*2/ms/1e9:.2f} TB/s (r+w)")
    ms=t(lambda: x.sum()); print(f"read {mb} MB (sum): {ms*1e3:.1f} us, {x.numel()*2/ms/1e9:.2f} TB/s")
    w=x.view(-1, 4096)
    v=torch.randn(1,4096,device='cuda',dtype=torch.bfloat16)
    ms=t(lambda: v@w.T); print(f"gemv cuBLAS {mb} MB: {ms*1e3:.1f} us, {x.numel()*2/ms/1e9:.2f} TB/s")

import torch, fusedops, time
from fusedops.bench.cases import rel_err, time_ms
for m,n,k in ((1024,4096,4096),(4096,4096,4096)):
    for g in ("tensor","row","block128"):
        a=torch.randn(m,k,device='cuda',dtype=torch.bfloat16); b=torch.randn(n,k,device='cuda',dtype=torch.bfloat16)
        qa,sa=fusedops.quantize_fp8(a,granularity=g); qb,sb=fusedops.quantize_fp8(b,granularity=g)
        t0=time.time(); out=fusedops.fp8_gemm(qa,qb,a_scale=sa,b_scale=sb,granularity=g,out_dtype=torch.bfloat16); torch.cuda.synchronize()
        print(m,n,k,g,"ran in",round(time.time()-t0,2),"s", flush=True)
        if g=="block128":
            da=qa.double()*sa.double().repeat_interleave(128,0)[:m].repeat_interleave(128,1)[:,:k]
            db=qb.double()*sb.double().repeat_interleave(128,0)[:n].repeat_interleave(128,1)[:,:k]
        else:
            sh=(-1,1) if g=="row" else ()
            da,db=qa.double()*sa.double().reshape(sh), qb.double()*sb.double().reshape(sh)
        err=rel_err(out, da@db.T)
        t=time_ms(lambda: fusedops.fp8_gemm(qa,qb,a_scale=sa,b_scale=sb,granularity=g,out_dtype=torch.bfloat16))
        print(f"  err {err:.3e}  {t*1e3:.1f} us {2*m*n*k/t/1e9:.0f} TFLOP/s", flush=True)

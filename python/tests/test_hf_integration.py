"""fusedops.integrations.transformers (issue 11): a loaded Hugging Face model's gated MLPs
patched in place, parameters shared, checkpoints unchanged."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch API needs PyTorch")
transformers = pytest.importorskip("transformers")

from fusedops.integrations.transformers import (  # noqa: E402
    FusedGatedMLPAdapter,
    patch_gated_mlps,
)

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def tiny_llama(**overrides):
    config = transformers.LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=100,
        **overrides,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def test_llama_mlps_are_patched_with_shared_parameters_and_the_same_checkpoint() -> None:
    model = tiny_llama()
    gate = model.model.layers[0].mlp.gate_proj.weight
    keys = sorted(model.state_dict())
    ids = torch.randint(0, 100, (2, 9))
    with torch.no_grad():
        before = model(ids).logits
    report = patch_gated_mlps(model)
    assert report == {
        "model.layers.0.mlp": "fused silu",
        "model.layers.1.mlp": "fused silu",
    }
    assert isinstance(model.model.layers[0].mlp, FusedGatedMLPAdapter)
    assert model.model.layers[0].mlp.gate_proj.weight is gate
    assert sorted(model.state_dict()) == keys
    with torch.no_grad():  # on the CPU the adapter computes what the module did
        assert torch.equal(model(ids).logits, before)
    assert patch_gated_mlps(model) == {}  # patching twice changes nothing


def test_gemma_geglu_and_modules_left_alone_say_why() -> None:
    model = tiny_llama(hidden_act="gelu_pytorch_tanh")
    assert set(patch_gated_mlps(model).values()) == {"fused gelu_tanh"}
    biased = tiny_llama(mlp_bias=True)
    report = patch_gated_mlps(biased)
    assert set(report.values()) == {
        "left alone: gate_proj/up_proj have a bias (the fused kernel has none)"
    }
    relu = tiny_llama(hidden_act="relu")
    assert "activation ReLU" in next(iter(patch_gated_mlps(relu).values()))


@needs_gpu
def test_patched_model_matches_on_the_gpu() -> None:
    model = tiny_llama().cuda().to(torch.bfloat16)
    ids = torch.randint(0, 100, (2, 33), device="cuda")
    with torch.no_grad():
        before = model(ids).logits.double()
        patch_gated_mlps(model)
        after = model(ids).logits.double()
    assert float((after - before).norm() / before.norm()) < 2e-2


@needs_gpu
def test_patched_model_trains_like_the_original() -> None:
    # One training step in bf16 through the fused MLPs (their backward recomputes the products)
    # against the unpatched model on the same batch: the loss, every MLP weight's gradient and
    # the embedding's (which flows back through them).
    ids = torch.randint(0, 100, (2, 33), device="cuda")

    def step(patch: bool) -> tuple[float, dict[str, torch.Tensor]]:
        model = tiny_llama().cuda().to(torch.bfloat16).train()
        if patch:
            assert len(patch_gated_mlps(model)) == 2
        loss = model(ids, labels=ids).loss
        loss.backward()
        grads = {n: p.grad.double() for n, p in model.named_parameters() if "mlp" in n}
        grads["embed"] = model.model.embed_tokens.weight.grad.double()
        return float(loss), grads

    loss_ref, grads_ref = step(False)
    loss, grads = step(True)
    assert abs(loss - loss_ref) < 1e-2 * abs(loss_ref)
    assert grads.keys() == grads_ref.keys() and len(grads) == 7  # 2 × (gate, up, down) + embed
    for name, want in grads_ref.items():
        got = grads[name]
        assert float((got - want).norm() / want.norm()) < 5e-2, name

"""The ``_fastcall`` extension (lib/Bindings/Python/FastCall.c) without PyTorch: its checks,
allocations, launch and errors, driven with stand-in tensors and an empty launch plan.

Runs wherever the extension was built (it needs Python's headers at build time); the PyTorch
tests in test_torch_api.py run it on the GPU with real tensors, and again with it switched off.
"""

from __future__ import annotations

import ctypes

import pytest

from fusedops import _native

fastcall = _native.fastcall()
pytestmark = pytest.mark.skipif(
    fastcall is None, reason="_fastcall.abi3.so was not built (no Python headers at build time)"
)


class Tensor:
    """Answers what the launcher asks a torch.Tensor."""

    def __init__(self, address=4096, device=0, contiguous=True, requires_grad=False):
        self.address, self.device = address, device
        self.contiguous, self.requires_grad = contiguous, requires_grad

    def get_device(self):
        return self.device

    def is_contiguous(self):
        return self.contiguous

    def data_ptr(self):
        if isinstance(self.address, Exception):
            raise self.address
        return self.address


class Subclass(Tensor):
    pass


class Failed(Exception):
    pass


@pytest.fixture
def plan():
    rt = _native.runtime()
    handle = ctypes.c_void_p()
    assert rt.fusedopsLaunchPlanCreate(ctypes.byref(handle)) == 0
    yield handle.value
    rt.fusedopsLaunchPlanDestroy(handle)


def make(plan, allocators, on_error=None, inputs=2, tensor_type=Tensor, device=0):
    def failed(status):
        raise Failed(status)

    return fastcall.Launcher(
        _native.LaunchPlan.run_address(),
        plan,
        None,
        inputs,
        device,
        tensor_type,
        lambda index: 0,
        (device,),
        allocators,
        on_error or failed,
    )


def recorder(calls):
    def allocate(*args, **kwargs):
        calls.append((args, kwargs))
        return Tensor(address=8192 * len(calls))

    return allocate


@pytest.mark.parametrize(
    "bad",
    [
        Subclass(),
        Tensor(requires_grad=True),
        Tensor(device=-1),
        Tensor(device=1),
        Tensor(contiguous=False),
        Tensor(address=4096 + 2),
        "not a tensor",
    ],
    ids=["subclass", "requires_grad", "cpu", "other_gpu", "strided", "misaligned", "str"],
)
def test_an_input_the_signature_did_not_assume_takes_the_checked_path(plan, bad) -> None:
    calls = []
    launcher = make(plan, ((recorder(calls), 0, (), {"dtype": "f16"}),))
    assert launcher((Tensor(), bad)) is None
    assert launcher((bad, Tensor())) is None
    assert calls == []  # nothing allocated, nothing launched


def test_ready_inputs_allocate_and_launch(plan) -> None:
    calls = []
    allocate = recorder(calls)
    x = Tensor(address=4096)
    launcher = make(
        plan,
        ((allocate, 1, (), {"dtype": "fp8"}), (allocate, -1, ((4, 8), (8, 1)), {"dtype": "f32"})),
    )
    try:
        outputs = launcher((Tensor(), x))
    except Failed as e:  # no CUDA driver here: the run reports it through on_error
        assert e.args[0] == 1  # FUSEDOPS_ERROR_NO_DRIVER
    else:  # a driver: the empty plan launches nothing and succeeds
        assert isinstance(outputs, tuple) and [o.address for o in outputs] == [8192, 16384]
    assert calls == [((x,), {"dtype": "fp8"}), (((4, 8), (8, 1)), {"dtype": "f32"})]
    # An absent optional tensor (None) is skipped: input 1 is still x.
    calls.clear()
    try:
        launcher((None, Tensor(), None, x))
    except Failed as e:
        assert e.args[0] == 1
    assert calls[0] == ((x,), {"dtype": "fp8"})


def test_a_launcher_takes_the_tensors_of_its_own_gpu(plan) -> None:
    # A launcher for GPU 1 runs tensors on GPU 1 only, and asks for GPU 1's stream.
    calls, streams = [], []

    def failed(status):
        raise Failed(status)

    def stream(index):
        streams.append(index)
        return 0

    launcher = fastcall.Launcher(
        _native.LaunchPlan.run_address(),
        plan,
        None,
        2,
        1,
        Tensor,
        stream,
        (1,),
        ((recorder(calls), 0, (), {}),),
        failed,
    )
    assert launcher((Tensor(device=0), Tensor(device=1))) is None
    assert launcher((Tensor(device=1), Tensor(device=0))) is None
    assert calls == [] and streams == []
    try:
        launcher((Tensor(device=1), Tensor(device=1)))
    except Failed:  # no CUDA driver here (or no GPU 1): the run said so
        pass
    assert len(calls) == 1 and streams == [1]


def test_parameters_and_grad_mode(plan) -> None:
    # A tuple of exact types (torch.Tensor, nn.Parameter); an input that requires grad takes
    # the fast path only where grad_enabled() says grad mode is off (torch.no_grad()).
    grad = [True]
    calls = []

    def on_error(status):
        raise Failed(status)

    launcher = fastcall.Launcher(
        _native.LaunchPlan.run_address(),
        plan,
        None,
        1,
        0,
        (Tensor, Subclass),
        lambda index: 0,
        (0,),
        ((recorder(calls), 0, (), {}),),
        on_error,
        lambda: grad[0],
    )
    assert launcher((Tensor(requires_grad=True),)) is None
    assert launcher((Subclass(requires_grad=True),)) is None
    assert calls == []
    grad[0] = False
    for x in (Tensor(requires_grad=True), Subclass(requires_grad=True), Subclass()):
        try:
            launcher((x,))
        except Failed:  # no CUDA driver here: allocated, then the launch said so
            pass
    assert len(calls) == 3
    table = fastcall.Table((Shaped, ShapedParameter))
    table.add((Shaped(),), (), lambda tensors: "hit")
    assert table((ShapedParameter(),), ()) == "hit"  # same shape and dtype, a parameter
    assert table((Subclass(),), ()) is None  # not one of the types: the checked path
    with pytest.raises(TypeError, match="callable"):
        fastcall.Launcher(
            _native.LaunchPlan.run_address(),
            plan,
            None,
            1,
            0,
            Tensor,
            lambda index: 0,
            (0,),
            ((recorder([]), 0, (), {}),),
            lambda status: None,
            "not callable",
        )


def test_errors_of_the_tensors_propagate(plan) -> None:
    launcher = make(plan, ((recorder([]), 0, (), {}),))
    with pytest.raises(ValueError, match="no pointer"):
        launcher((Tensor(), Tensor(address=ValueError("no pointer"))))

    def broken(*args, **kwargs):
        raise MemoryError("out of memory")

    launcher = make(plan, ((broken, 0, (), {}),))
    with pytest.raises(MemoryError):
        launcher((Tensor(), Tensor()))


def test_a_launch_failure_without_an_exception_still_raises(plan) -> None:
    if _native.runtime().fusedopsInit() == 0:
        pytest.skip("a CUDA driver is present: the empty plan does not fail")
    launcher = make(plan, ((recorder([]), 0, (), {}),), on_error=lambda status: None)
    with pytest.raises(RuntimeError, match="status 1"):
        launcher((Tensor(), Tensor()))


def test_bad_calls_and_constructions_are_refused(plan) -> None:
    launcher = make(plan, ((recorder([]), 0, (), {}),))
    with pytest.raises(TypeError, match="2 inputs, got 1"):
        launcher((Tensor(),))
    with pytest.raises(TypeError, match="2 inputs, got 1"):
        launcher((Tensor(), None))  # Nones are absent optional tensors, not inputs
    with pytest.raises(TypeError, match="2 inputs, got more than 2"):
        launcher((Tensor(), Tensor(), Tensor()))
    with pytest.raises(TypeError):
        launcher([Tensor(), Tensor()])  # a tuple, not a list
    with pytest.raises(TypeError, match="keyword"):
        launcher(inputs=(Tensor(), Tensor()))
    with pytest.raises(ValueError, match="fusedopsLaunchPlanRunOnDevice and a plan"):
        make(0, ((recorder([]), 0, (), {}),))
    with pytest.raises(ValueError, match="GPU ordinal, not -1"):
        make(plan, ((recorder([]), 0, (), {}),), device=-1)
    with pytest.raises(TypeError, match="allocator 0 must be"):
        make(plan, ((recorder([]), 0, (), None),))
    with pytest.raises(ValueError, match="copies input 2 of 2"):
        make(plan, ((recorder([]), 2, (), {}),))
    with pytest.raises(ValueError, match="at least one input and one output"):
        make(plan, ())
    with pytest.raises(ValueError, match="1 to 32 buffers"):
        make(plan, ((recorder([]), 0, (), {}),) * 31)
    with pytest.raises(TypeError, match="by position"):
        fastcall.Launcher(run_address=1)


def test_the_switch_turns_the_extension_off(monkeypatch) -> None:
    monkeypatch.setenv("FUSEDOPS_FASTCALL", "0")
    _native._forget_fastcall()
    try:
        assert _native.fastcall() is None
    finally:
        monkeypatch.undo()
        _native._forget_fastcall()
    assert _native.fastcall() is not None


def test_an_extension_of_another_interface_is_refused(monkeypatch) -> None:
    # A _fastcall.abi3.so left from another build (its Launcher takes other arguments) must not
    # fail every call: it is refused with a warning that says to rebuild, and calls take the
    # Python path.
    assert fastcall.INTERFACE == _native.FASTCALL_INTERFACE
    monkeypatch.setattr(_native, "FASTCALL_INTERFACE", fastcall.INTERFACE + 1)
    _native._forget_fastcall()
    try:
        with pytest.warns(RuntimeWarning, match="from another build; rebuild it"):
            assert _native.fastcall() is None
    finally:
        monkeypatch.undo()
        _native._forget_fastcall()
    assert _native.fastcall() is not None


class Shaped(Tensor):
    """A stand-in tensor with the shape and dtype a Table keys on."""

    def __init__(self, shape=(4, 8), dtype="f16", **kwargs):
        super().__init__(**kwargs)
        self.shape, self.dtype = shape, dtype


class ShapedParameter(Shaped):
    """Like nn.Parameter to torch.Tensor: a subclass the tables take as well."""


def test_a_table_finds_calls_by_signature() -> None:
    table = fastcall.Table(Shaped)
    x, w = Shaped(), Shaped(shape=(8,))
    seen = []

    def entry(tensors):
        seen.append(tensors)
        return ("out",)

    assert len(table) == 0 and table((x, w, None), (1e-6, "neox")) is None
    table.add((x, w, None), (1e-6, "neox"), entry)
    assert len(table) == 1
    # Other tensors with the same shapes and dtypes, equal statics: a hit, given the tuple as is.
    y = Shaped()
    assert table((y, w, None), (1e-6, "neox")) == ("out",)
    assert seen == [(y, w, None)]
    # Any other shape, dtype, static or absent tensor: a miss.
    assert table((Shaped(shape=(4, 9)), w, None), (1e-6, "neox")) is None
    assert table((Shaped(dtype="bf16"), w, None), (1e-6, "neox")) is None
    assert table((x, w, None), (1e-5, "neox")) is None
    assert table((x, w, x), (1e-6, "neox")) is None
    # Not exact tensors, unhashable statics: the checked path.
    assert table((Subclass(), w, None), (1e-6, "neox")) is None
    assert table(("x", w, None), (1e-6, "neox")) is None
    assert table((x, w, None), ([1e-6], "neox")) is None
    # The same signature on another GPU (the first tensor's device) is another entry.
    assert table((Shaped(device=1), w, None), (1e-6, "neox")) is None
    assert len(seen) == 1
    table.add((Shaped(device=1), w, None), (1e-6, "neox"), lambda tensors: ("on 1",))
    assert table((Shaped(device=1), w, None), (1e-6, "neox")) == ("on 1",)
    assert table((y, w, None), (1e-6, "neox")) == ("out",)
    assert len(table) == 2 and len(seen) == 2
    table.clear()
    assert len(table) == 0 and table((x, w, None), (1e-6, "neox")) is None


def test_a_table_runs_a_launcher_on_the_present_tensors(plan) -> None:
    calls = []
    launcher = make(plan, ((recorder(calls), 1, (), {}),), tensor_type=Shaped)  # like input 1
    table = fastcall.Table(Shaped)
    x, w = Shaped(), Shaped(shape=(8,))
    table.add((x, None, w), (), launcher)
    try:
        table((x, None, w), ())
    except Failed:  # no CUDA driver here
        pass
    assert calls == [((w,), {})]  # inputs (x, w): the None dropped
    # A signature whose tensors are not what the launcher takes is a bug: said, not run.
    table.add((x, None, None), (), launcher)
    with pytest.raises(TypeError, match="2 inputs, got 1"):
        table((x, None, None), ())


def test_bad_table_calls_are_refused() -> None:
    table = fastcall.Table(Shaped)
    with pytest.raises(TypeError, match="exact tensors or None"):
        table.add((Subclass(),), (), lambda tensors: None)
    with pytest.raises(TypeError, match="callable"):
        table.add((Shaped(),), (), None)
    with pytest.raises(TypeError, match="unhashable"):
        table.add((Shaped(),), ([1],), lambda tensors: None)
    with pytest.raises(TypeError):
        table([Shaped()], ())  # a tuple, not a list
    with pytest.raises(TypeError, match="by position"):
        table(tensors=(), statics=())

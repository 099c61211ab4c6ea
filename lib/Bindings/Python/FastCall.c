//===- FastCall.c - The Python package's per-call launch path in C --------===//
//
// fusedops._fastcall: one object per compiled kernel that does, in one call
// from Python, what every cached call of the PyTorch API needs: check that
// each input is still what the validated signature assumed (an exact
// torch.Tensor on cuda:0, contiguous, 16-byte aligned, not requiring grad),
// allocate the outputs, and launch the kernels' plan on PyTorch's current
// stream through fusedopsLaunchPlanRun. The same steps in Python
// (fusedops.torch_ops._Kernel.run_checked) cost about twice the host time:
// the bytecode and ctypes' argument conversion, not the work.
//
// Built against CPython's limited API (abi3, 3.9), so one binary serves every
// Python from 3.9 on, like the ctypes-loaded C API libraries it sits beside.
// It neither links against PyTorch nor against the runtime library: the
// package passes in torch's callables and the address of
// fusedopsLaunchPlanRun from the library ctypes loaded.
//
//===----------------------------------------------------------------------===//

#define PY_SSIZE_T_CLEAN
#define Py_LIMITED_API 0x03090000
#include <Python.h>

#include "fusedops-c/Runtime.h"

#include <stdint.h>

/// The most kernel arguments (inputs and outputs) one launcher takes; the
/// fusedops ops have at most six.
#define FASTCALL_MAX_BUFFERS 32

typedef fusedops_status (*RunPlanFn)(fusedops_launch_plan, void *const *,
                                     size_t, fusedops_stream);

typedef struct {
  PyObject ob_base; // PyObject_HEAD, spelled out for clang-format
  fusedops_launch_plan plan;
  RunPlanFn run;
  Py_ssize_t numInputs;
  Py_ssize_t numOutputs;
  /// Keeps the plan alive (the Python object that owns it).
  PyObject *owner;
  /// torch.Tensor: inputs must be exactly of this type.
  PyObject *tensorType;
  /// A callable returning the current stream as an int, and its arguments.
  PyObject *stream;
  PyObject *streamArgs;
  /// Per output: (callable, like, args, kwargs). like >= 0: the output is
  /// callable(inputs[like], **kwargs); else callable(*args, **kwargs).
  PyObject *allocators;
  /// Called with the status of a failed launch; raises the package's error.
  PyObject *onError;
} Launcher;

static PyObject *requiresGradName, *getDeviceName, *isContiguousName,
    *dataPtrName;

/// The int a no-argument method returns, or -1 with an exception set.
static int callForPointer(PyObject *object, PyObject *method,
                          unsigned long long *value) {
  PyObject *result = PyObject_CallMethodObjArgs(object, method, NULL);
  if (!result)
    return -1;
  *value = PyLong_AsUnsignedLongLong(result);
  Py_DECREF(result);
  return (*value == (unsigned long long)-1 && PyErr_Occurred()) ? -1 : 0;
}

/// 1 if `tensor` is what a validated signature assumes and its data pointer
/// is in *pointer, 0 if not (the caller takes the checked path), -1 with an
/// exception set if asking the tensor failed.
static int readyInput(Launcher *self, PyObject *tensor, void **pointer) {
  if ((PyObject *)Py_TYPE(tensor) != self->tensorType)
    return 0;
  PyObject *result = PyObject_GetAttr(tensor, requiresGradName);
  if (!result)
    return -1;
  int requiresGrad = result == Py_True;
  Py_DECREF(result);
  if (requiresGrad)
    return 0;
  result = PyObject_CallMethodObjArgs(tensor, getDeviceName, NULL);
  if (!result)
    return -1;
  long device = PyLong_AsLong(result);
  Py_DECREF(result);
  if (device == -1 && PyErr_Occurred())
    return -1;
  if (device != 0) // -1 on the CPU, 1.. on other GPUs
    return 0;
  result = PyObject_CallMethodObjArgs(tensor, isContiguousName, NULL);
  if (!result)
    return -1;
  int contiguous = result == Py_True;
  Py_DECREF(result);
  if (!contiguous)
    return 0;
  unsigned long long address;
  if (callForPointer(tensor, dataPtrName, &address))
    return -1;
  if (address & 15) // the kernels' 16-byte vector accesses would fault
    return 0;
  *pointer = (void *)(uintptr_t)address;
  return 1;
}

/// launcher(inputs: tuple) -> tuple of outputs, or None when an input is not
/// what the signature assumed (nothing allocated or launched then).
static PyObject *Launcher_call(PyObject *object, PyObject *args,
                               PyObject *kwargs) {
  Launcher *self = (Launcher *)object;
  PyObject *inputs;
  if (kwargs && PyDict_Size(kwargs)) {
    PyErr_SetString(PyExc_TypeError, "a launcher takes no keyword arguments");
    return NULL;
  }
  if (!PyArg_ParseTuple(args, "O!:Launcher", &PyTuple_Type, &inputs))
    return NULL;
  if (PyTuple_Size(inputs) != self->numInputs) {
    PyErr_Format(PyExc_TypeError, "the kernel takes %zd inputs, got %zd",
                 self->numInputs, PyTuple_Size(inputs));
    return NULL;
  }
  void *buffers[FASTCALL_MAX_BUFFERS];
  for (Py_ssize_t i = 0; i < self->numInputs; ++i) {
    int ready = readyInput(self, PyTuple_GetItem(inputs, i), &buffers[i]);
    if (ready < 0)
      return NULL;
    if (!ready)
      Py_RETURN_NONE;
  }

  PyObject *outputs = PyTuple_New(self->numOutputs);
  if (!outputs)
    return NULL;
  for (Py_ssize_t j = 0; j < self->numOutputs; ++j) {
    PyObject *spec = PyTuple_GetItem(self->allocators, j);
    PyObject *callable = PyTuple_GetItem(spec, 0);
    Py_ssize_t like = PyLong_AsSsize_t(PyTuple_GetItem(spec, 1));
    PyObject *callArgs = PyTuple_GetItem(spec, 2);
    PyObject *callKwargs = PyTuple_GetItem(spec, 3);
    PyObject *output;
    if (like >= 0) {
      PyObject *likeArgs = PyTuple_Pack(1, PyTuple_GetItem(inputs, like));
      if (!likeArgs) {
        Py_DECREF(outputs);
        return NULL;
      }
      output = PyObject_Call(callable, likeArgs, callKwargs);
      Py_DECREF(likeArgs);
    } else {
      output = PyObject_Call(callable, callArgs, callKwargs);
    }
    if (!output) {
      Py_DECREF(outputs);
      return NULL;
    }
    PyTuple_SetItem(outputs, j, output); // steals the reference
    unsigned long long address;
    if (callForPointer(output, dataPtrName, &address)) {
      Py_DECREF(outputs);
      return NULL;
    }
    buffers[self->numInputs + j] = (void *)(uintptr_t)address;
  }

  PyObject *streamObject = PyObject_Call(self->stream, self->streamArgs, NULL);
  if (!streamObject) {
    Py_DECREF(outputs);
    return NULL;
  }
  void *stream = PyLong_AsVoidPtr(streamObject);
  Py_DECREF(streamObject);
  if (!stream && PyErr_Occurred()) {
    Py_DECREF(outputs);
    return NULL;
  }

  fusedops_status status;
  Py_BEGIN_ALLOW_THREADS;
  status = self->run(self->plan, buffers,
                     (size_t)(self->numInputs + self->numOutputs), stream);
  Py_END_ALLOW_THREADS;
  if (status != FUSEDOPS_SUCCESS) {
    Py_DECREF(outputs);
    PyObject *raised = PyObject_CallFunction(self->onError, "i", (int)status);
    Py_XDECREF(raised);
    if (!PyErr_Occurred())
      PyErr_Format(PyExc_RuntimeError,
                   "launching a fusedops kernel failed (status %d)",
                   (int)status);
    return NULL;
  }
  return outputs;
}

/// Launcher(run_address, plan_address, owner, num_inputs, tensor_type,
///          stream, stream_args, allocators, on_error), by position.
static PyObject *Launcher_new(PyTypeObject *type, PyObject *args,
                              PyObject *kwargs) {
  unsigned long long runAddress, planAddress;
  Py_ssize_t numInputs;
  PyObject *owner, *tensorType, *stream, *streamArgs, *allocators, *onError;
  if (kwargs && PyDict_Size(kwargs)) {
    PyErr_SetString(PyExc_TypeError,
                    "Launcher takes its arguments by position");
    return NULL;
  }
  if (!PyArg_ParseTuple(args, "KKOnOOO!O!O:Launcher", &runAddress, &planAddress,
                        &owner, &numInputs, &tensorType, &stream, &PyTuple_Type,
                        &streamArgs, &PyTuple_Type, &allocators, &onError))
    return NULL;
  if (!runAddress || !planAddress) {
    PyErr_SetString(PyExc_ValueError,
                    "a launcher needs fusedopsLaunchPlanRun and a plan");
    return NULL;
  }
  Py_ssize_t numOutputs = PyTuple_Size(allocators);
  if (numInputs < 1 || numOutputs < 1 ||
      numInputs + numOutputs > FASTCALL_MAX_BUFFERS) {
    PyErr_Format(PyExc_ValueError,
                 "a launcher takes 1 to %d buffers, at least one input and "
                 "one output; got %zd inputs and %zd outputs",
                 FASTCALL_MAX_BUFFERS, numInputs, numOutputs);
    return NULL;
  }
  for (Py_ssize_t j = 0; j < numOutputs; ++j) {
    PyObject *spec = PyTuple_GetItem(allocators, j);
    if (!PyTuple_Check(spec) || PyTuple_Size(spec) != 4 ||
        !PyCallable_Check(PyTuple_GetItem(spec, 0)) ||
        !PyLong_Check(PyTuple_GetItem(spec, 1)) ||
        !PyTuple_Check(PyTuple_GetItem(spec, 2)) ||
        !PyDict_Check(PyTuple_GetItem(spec, 3))) {
      PyErr_Format(PyExc_TypeError,
                   "allocator %zd must be (callable, like: int, args: tuple, "
                   "kwargs: dict)",
                   j);
      return NULL;
    }
    Py_ssize_t like = PyLong_AsSsize_t(PyTuple_GetItem(spec, 1));
    if (like >= numInputs) {
      PyErr_Format(PyExc_ValueError, "allocator %zd copies input %zd of %zd", j,
                   like, numInputs);
      return NULL;
    }
  }
  if (!PyCallable_Check(stream) || !PyCallable_Check(onError)) {
    PyErr_SetString(PyExc_TypeError, "stream and on_error must be callable");
    return NULL;
  }
  allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
  Launcher *self = (Launcher *)alloc(type, 0);
  if (!self)
    return NULL;
  self->run = (RunPlanFn)(uintptr_t)runAddress;
  self->plan = (fusedops_launch_plan)(uintptr_t)planAddress;
  self->numInputs = numInputs;
  self->numOutputs = numOutputs;
  Py_INCREF(owner);
  self->owner = owner;
  Py_INCREF(tensorType);
  self->tensorType = tensorType;
  Py_INCREF(stream);
  self->stream = stream;
  Py_INCREF(streamArgs);
  self->streamArgs = streamArgs;
  Py_INCREF(allocators);
  self->allocators = allocators;
  Py_INCREF(onError);
  self->onError = onError;
  return (PyObject *)self;
}

static void Launcher_dealloc(PyObject *object) {
  Launcher *self = (Launcher *)object;
  Py_XDECREF(self->owner);
  Py_XDECREF(self->tensorType);
  Py_XDECREF(self->stream);
  Py_XDECREF(self->streamArgs);
  Py_XDECREF(self->allocators);
  Py_XDECREF(self->onError);
  PyTypeObject *type = Py_TYPE(object);
  freefunc free = (freefunc)PyType_GetSlot(type, Py_tp_free);
  free(object);
  Py_DECREF(type);
}

static char launcherDoc[] =
    "Launcher(run_address, plan_address, owner, num_inputs, tensor_type, "
    "stream, stream_args, allocators, on_error)\n\n"
    "Checks a cached call's inputs, allocates its outputs and launches its "
    "kernels' plan; calling it with the inputs' tuple returns the outputs' "
    "tuple, or None when an input needs the full checks.";

static PyType_Slot launcherSlots[] = {
    {Py_tp_new, (void *)Launcher_new},
    {Py_tp_dealloc, (void *)Launcher_dealloc},
    {Py_tp_call, (void *)Launcher_call},
    {Py_tp_doc, launcherDoc},
    {0, NULL},
};

static PyType_Spec launcherSpec = {
    "fusedops._fastcall.Launcher",
    sizeof(Launcher),
    0,
    Py_TPFLAGS_DEFAULT,
    launcherSlots,
};

static struct PyModuleDef fastcallModule = {
    PyModuleDef_HEAD_INIT,
    "_fastcall",
    "The PyTorch API's per-call launch path (see fusedops.torch_ops).",
    -1,
    NULL,
};

PyMODINIT_FUNC PyInit__fastcall(void) {
  requiresGradName = PyUnicode_InternFromString("requires_grad");
  getDeviceName = PyUnicode_InternFromString("get_device");
  isContiguousName = PyUnicode_InternFromString("is_contiguous");
  dataPtrName = PyUnicode_InternFromString("data_ptr");
  if (!requiresGradName || !getDeviceName || !isContiguousName || !dataPtrName)
    return NULL;
  PyObject *module = PyModule_Create(&fastcallModule);
  if (!module)
    return NULL;
  PyObject *type = PyType_FromSpec(&launcherSpec);
  if (!type || PyModule_AddObject(module, "Launcher", type) < 0) {
    Py_XDECREF(type);
    Py_DECREF(module);
    return NULL;
  }
  return module;
}

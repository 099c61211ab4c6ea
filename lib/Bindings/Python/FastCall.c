//===- FastCall.c - The Python package's per-call launch path in C --------===//
//
// fusedops._fastcall: what every cached call of the PyTorch API does, in C.
// A Table per operator finds the call's compiled kernel by its signature (the
// non-tensor arguments, each tensor's shape and dtype); the kernel's Launcher
// checks that each input is still what the signature assumed (exactly a
// torch.Tensor or an nn.Parameter, on the launcher's GPU, contiguous, 16-byte
// aligned, not requiring grad where grad mode is on),
// allocates the outputs and launches the kernels' plan on PyTorch's current
// stream of that GPU through fusedopsLaunchPlanRunOnDevice. The same steps in Python
// (fusedops.torch_ops._CallTable and _Kernel.run_checked) cost 13.0-13.5 us a
// call against 8.4-9.4 us (H200, docs/perf/python-api.md): the bytecode and
// ctypes' argument conversion, not the work.
//
// Built against CPython's limited API (abi3, 3.9), so one binary serves every
// Python from 3.9 on, like the ctypes-loaded C API libraries it sits beside.
// It neither links against PyTorch nor against the runtime library: the
// package passes in torch's callables and the address of
// fusedopsLaunchPlanRunOnDevice from the library ctypes loaded.
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

typedef fusedops_status (*RunPlanFn)(fusedops_launch_plan, int,
                                     void *const *, size_t, fusedops_stream);

typedef struct {
  PyObject ob_base; // PyObject_HEAD, spelled out for clang-format
  fusedops_launch_plan plan;
  RunPlanFn run;
  Py_ssize_t numInputs;
  Py_ssize_t numOutputs;
  /// The GPU (CUDA ordinal) the plan runs on; every input must be on it.
  int device;
  /// Keeps the plan alive (the Python object that owns it).
  PyObject *owner;
  /// torch.Tensor, or a tuple of types (torch.Tensor, nn.Parameter):
  /// inputs must be exactly of one of them.
  PyObject *tensorType;
  /// torch.is_grad_enabled, or NULL: an input that requires grad takes the
  /// fast path only where this returns False.
  PyObject *gradEnabled;
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

/// Whether `object`'s type is exactly `types` or one of the tuple `types`.
static int isPlainType(PyObject *object, PyObject *types) {
  PyObject *type = (PyObject *)Py_TYPE(object);
  if (!PyTuple_Check(types))
    return type == types;
  for (Py_ssize_t i = 0, n = PyTuple_Size(types); i < n; ++i)
    if (type == PyTuple_GetItem(types, i))
      return 1;
  return 0;
}

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
  if (!isPlainType(tensor, self->tensorType))
    return 0;
  PyObject *result = PyObject_GetAttr(tensor, requiresGradName);
  if (!result)
    return -1;
  int requiresGrad = result == Py_True;
  Py_DECREF(result);
  if (requiresGrad) {
    // Module parameters require grad; under torch.no_grad() or
    // inference_mode autograd records nothing, so the call is plain.
    if (!self->gradEnabled)
      return 0;
    result = PyObject_CallObject(self->gradEnabled, NULL);
    if (!result)
      return -1;
    int enabled = PyObject_IsTrue(result);
    Py_DECREF(result);
    if (enabled)
      return enabled < 0 ? -1 : 0;
  }
  result = PyObject_CallMethodObjArgs(tensor, getDeviceName, NULL);
  if (!result)
    return -1;
  long device = PyLong_AsLong(result);
  Py_DECREF(result);
  if (device == -1 && PyErr_Occurred())
    return -1;
  if (device != self->device) // -1 on the CPU
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

/// Runs `self` on `inputs`, a tuple of numInputs tensors and any number of
/// Nones (absent optional tensors, skipped): the outputs, None when an input
/// is not what the signature assumed (nothing allocated or launched then), or
/// NULL with an exception set.
static PyObject *runLauncher(Launcher *self, PyObject *inputs) {
  void *buffers[FASTCALL_MAX_BUFFERS];
  PyObject *present[FASTCALL_MAX_BUFFERS];
  Py_ssize_t numPresent = 0, size = PyTuple_Size(inputs);
  for (Py_ssize_t i = 0; i < size; ++i) {
    PyObject *input = PyTuple_GetItem(inputs, i);
    if (input == Py_None)
      continue;
    if (numPresent == self->numInputs) {
      numPresent = -1;
      break;
    }
    present[numPresent++] = input;
  }
  if (numPresent != self->numInputs) {
    PyErr_Format(PyExc_TypeError,
                 "the kernel takes %zd inputs, got %s%zd (Nones aside)",
                 self->numInputs, numPresent < 0 ? "more than " : "",
                 numPresent < 0 ? self->numInputs : numPresent);
    return NULL;
  }
  for (Py_ssize_t i = 0; i < numPresent; ++i) {
    int ready = readyInput(self, present[i], &buffers[i]);
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
      PyObject *likeArgs = PyTuple_Pack(1, present[like]);
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

  // The GIL stays held, as PyTorch holds it for its own launches: releasing
  // and taking it again would cost more than the other threads gain.
  fusedops_status status =
      self->run(self->plan, self->device, buffers,
                (size_t)(self->numInputs + self->numOutputs), stream);
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

/// launcher(inputs: tuple) -> tuple of outputs, or None when an input is not
/// what the signature assumed. Nones in `inputs` are skipped.
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
  return runLauncher(self, inputs);
}

/// Launcher(run_address, plan_address, owner, num_inputs, device,
///          tensor_type, stream, stream_args, allocators, on_error[,
///          grad_enabled]), by position.
static PyObject *Launcher_new(PyTypeObject *type, PyObject *args,
                              PyObject *kwargs) {
  unsigned long long runAddress, planAddress;
  Py_ssize_t numInputs;
  int device;
  PyObject *owner, *tensorType, *stream, *streamArgs, *allocators, *onError,
      *gradEnabled = NULL;
  if (kwargs && PyDict_Size(kwargs)) {
    PyErr_SetString(PyExc_TypeError,
                    "Launcher takes its arguments by position");
    return NULL;
  }
  if (!PyArg_ParseTuple(args, "KKOniOOO!O!O|O:Launcher", &runAddress,
                        &planAddress, &owner, &numInputs, &device, &tensorType,
                        &stream,
                        &PyTuple_Type, &streamArgs, &PyTuple_Type, &allocators,
                        &onError, &gradEnabled))
    return NULL;
  if (gradEnabled == Py_None)
    gradEnabled = NULL;
  if (!runAddress || !planAddress) {
    PyErr_SetString(PyExc_ValueError,
                    "a launcher needs fusedopsLaunchPlanRunOnDevice and a "
                    "plan");
    return NULL;
  }
  if (device < 0) {
    PyErr_Format(PyExc_ValueError, "a launcher's device is a GPU ordinal, "
                                   "not %d",
                 device);
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
  if (!PyCallable_Check(stream) || !PyCallable_Check(onError) ||
      (gradEnabled && !PyCallable_Check(gradEnabled))) {
    PyErr_SetString(PyExc_TypeError,
                    "stream, on_error and grad_enabled must be callable");
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
  self->device = device;
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
  Py_XINCREF(gradEnabled);
  self->gradEnabled = gradEnabled;
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
  Py_XDECREF(self->gradEnabled);
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

//===----------------------------------------------------------------------===//
// Table: an operator's cached calls, found by their signature
//===----------------------------------------------------------------------===//

/// The calls of one operator that passed the full checks. Key: the call's
/// non-tensor arguments, the device of its first tensor (get_device()), then
/// each tensor's shape and dtype (None, None for an absent optional tensor);
/// value: what runs such a call, called with the
/// tensors as given (a Launcher directly, without a Python call).
typedef struct {
  PyObject ob_base; // PyObject_HEAD, spelled out for clang-format
  PyObject *tensorType;
  PyObject *entries; // dict
} Table;

static PyObject *shapeName, *dtypeName;
static PyObject *launcherType;

/// The key of a call, or NULL: with *plain = 0 and no exception where a
/// tensor argument is neither None nor exactly the tensor type (such calls
/// take the checked path), else with an exception set.
static PyObject *makeKey(Table *self, PyObject *tensors, PyObject *statics,
                         int *plain) {
  Py_ssize_t numTensors = PyTuple_Size(tensors);
  Py_ssize_t numStatics = PyTuple_Size(statics);
  PyObject *key = PyTuple_New(numStatics + 1 + 2 * numTensors);
  if (!key)
    return NULL;
  for (Py_ssize_t i = 0; i < numStatics; ++i) {
    PyObject *item = PyTuple_GetItem(statics, i);
    Py_INCREF(item);
    PyTuple_SetItem(key, i, item);
  }
  PyObject *device = NULL;
  for (Py_ssize_t i = 0; i < numTensors; ++i) {
    PyObject *tensor = PyTuple_GetItem(tensors, i);
    Py_ssize_t at = numStatics + 1 + 2 * i;
    if (tensor == Py_None) {
      Py_INCREF(Py_None);
      PyTuple_SetItem(key, at, Py_None);
      Py_INCREF(Py_None);
      PyTuple_SetItem(key, at + 1, Py_None);
      continue;
    }
    if (!isPlainType(tensor, self->tensorType)) {
      *plain = 0;
      Py_DECREF(key);
      return NULL;
    }
    PyObject *shape = PyObject_GetAttr(tensor, shapeName);
    if (!shape) {
      Py_DECREF(key);
      return NULL;
    }
    PyTuple_SetItem(key, at, shape);
    PyObject *dtype = PyObject_GetAttr(tensor, dtypeName);
    if (!dtype) {
      Py_DECREF(key);
      return NULL;
    }
    PyTuple_SetItem(key, at + 1, dtype);
    if (!device) {
      device = PyObject_CallMethodObjArgs(tensor, getDeviceName, NULL);
      if (!device) {
        Py_DECREF(key);
        return NULL;
      }
      PyTuple_SetItem(key, numStatics, device); // steals the reference
    }
  }
  if (!device) {
    Py_INCREF(Py_None);
    PyTuple_SetItem(key, numStatics, Py_None);
  }
  return key;
}

static int parseTableArgs(PyObject *args, PyObject *kwargs, const char *format,
                          PyObject **tensors, PyObject **statics,
                          PyObject **entry) {
  if (kwargs && PyDict_Size(kwargs)) {
    PyErr_SetString(PyExc_TypeError, "a table takes its arguments by position");
    return -1;
  }
  if (entry)
    return PyArg_ParseTuple(args, format, &PyTuple_Type, tensors, &PyTuple_Type,
                            statics, entry)
               ? 0
               : -1;
  return PyArg_ParseTuple(args, format, &PyTuple_Type, tensors, &PyTuple_Type,
                          statics)
             ? 0
             : -1;
}

/// table(tensors: tuple, statics: tuple) -> the outputs of the cached call
/// with this signature, or None where there is none or an input needs the
/// full checks.
static PyObject *Table_call(PyObject *object, PyObject *args,
                            PyObject *kwargs) {
  Table *self = (Table *)object;
  PyObject *tensors, *statics;
  if (parseTableArgs(args, kwargs, "O!O!:Table", &tensors, &statics, NULL))
    return NULL;
  int plain = 1;
  PyObject *key = makeKey(self, tensors, statics, &plain);
  if (!key) {
    if (!plain)
      Py_RETURN_NONE;
    return NULL;
  }
  PyObject *entry = PyDict_GetItemWithError(self->entries, key);
  Py_DECREF(key);
  if (!entry) {
    if (PyErr_Occurred()) {
      if (!PyErr_ExceptionMatches(PyExc_TypeError))
        return NULL;
      PyErr_Clear(); // an unhashable argument: the checks say what is wrong
    }
    Py_RETURN_NONE;
  }
  Py_INCREF(entry); // the allocators run Python code, which may clear us
  PyObject *result = (PyObject *)Py_TYPE(entry) == launcherType
                         ? runLauncher((Launcher *)entry, tensors)
                         : PyObject_CallFunctionObjArgs(entry, tensors, NULL);
  Py_DECREF(entry);
  return result;
}

/// table.add(tensors, statics, entry): later calls with this signature run
/// `entry`.
static PyObject *Table_add(PyObject *object, PyObject *args) {
  Table *self = (Table *)object;
  PyObject *tensors, *statics, *entry;
  if (parseTableArgs(args, NULL, "O!O!O:add", &tensors, &statics, &entry))
    return NULL;
  if (!PyCallable_Check(entry)) {
    PyErr_SetString(PyExc_TypeError, "a table entry must be callable");
    return NULL;
  }
  int plain = 1;
  PyObject *key = makeKey(self, tensors, statics, &plain);
  if (!key) {
    if (!plain)
      PyErr_SetString(PyExc_TypeError,
                      "a table's tensors must be exact tensors or None");
    return NULL;
  }
  int failed = PyDict_SetItem(self->entries, key, entry);
  Py_DECREF(key);
  if (failed)
    return NULL;
  Py_RETURN_NONE;
}

static PyObject *Table_clear(PyObject *object, PyObject *unused) {
  (void)unused;
  PyDict_Clear(((Table *)object)->entries);
  Py_RETURN_NONE;
}

static Py_ssize_t Table_length(PyObject *object) {
  return PyDict_Size(((Table *)object)->entries);
}

/// Table(tensor_type)
static PyObject *Table_new(PyTypeObject *type, PyObject *args,
                           PyObject *kwargs) {
  PyObject *tensorType;
  if (kwargs && PyDict_Size(kwargs)) {
    PyErr_SetString(PyExc_TypeError, "Table takes its argument by position");
    return NULL;
  }
  if (!PyArg_ParseTuple(args, "O:Table", &tensorType))
    return NULL;
  PyObject *entries = PyDict_New();
  if (!entries)
    return NULL;
  allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
  Table *self = (Table *)alloc(type, 0);
  if (!self) {
    Py_DECREF(entries);
    return NULL;
  }
  Py_INCREF(tensorType);
  self->tensorType = tensorType;
  self->entries = entries;
  return (PyObject *)self;
}

static void Table_dealloc(PyObject *object) {
  Table *self = (Table *)object;
  Py_XDECREF(self->tensorType);
  Py_XDECREF(self->entries);
  PyTypeObject *type = Py_TYPE(object);
  freefunc free = (freefunc)PyType_GetSlot(type, Py_tp_free);
  free(object);
  Py_DECREF(type);
}

static PyMethodDef tableMethods[] = {
    {"add", Table_add, METH_VARARGS,
     "add(tensors, statics, entry): run entry for calls of this signature"},
    {"clear", Table_clear, METH_NOARGS, "forget every entry"},
    {NULL, NULL, 0, NULL},
};

static char tableDoc[] =
    "Table(tensor_type)\n\n"
    "An operator's calls that passed the full checks, by signature (the "
    "non-tensor arguments, each tensor's shape and dtype). Calling it with "
    "(tensors, statics) runs the matching entry and returns its outputs, or "
    "None where there is none or an input needs the full checks.";

static PyType_Slot tableSlots[] = {
    {Py_tp_new, (void *)Table_new},
    {Py_tp_dealloc, (void *)Table_dealloc},
    {Py_tp_call, (void *)Table_call},
    {Py_tp_methods, tableMethods},
    {Py_mp_length, (void *)Table_length},
    {Py_tp_doc, tableDoc},
    {0, NULL},
};

static PyType_Spec tableSpec = {
    "fusedops._fastcall.Table", sizeof(Table), 0,
    Py_TPFLAGS_DEFAULT,         tableSlots,
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
  shapeName = PyUnicode_InternFromString("shape");
  dtypeName = PyUnicode_InternFromString("dtype");
  if (!requiresGradName || !getDeviceName || !isContiguousName ||
      !dataPtrName || !shapeName || !dtypeName)
    return NULL;
  PyObject *module = PyModule_Create(&fastcallModule);
  if (!module)
    return NULL;
  // The module keeps a reference to each type; launcherType borrows it.
  launcherType = PyType_FromSpec(&launcherSpec);
  if (!launcherType)
    goto fail;
  Py_INCREF(launcherType);
  if (PyModule_AddObject(module, "Launcher", launcherType) < 0) {
    Py_DECREF(launcherType);
    goto fail;
  }
  // The interface version fusedops._native checks (FASTCALL_INTERFACE there):
  // bump it with any change to Launcher's or Table's arguments.
  if (PyModule_AddIntConstant(module, "INTERFACE", 3) < 0)
    goto fail;
  PyObject *tableType = PyType_FromSpec(&tableSpec);
  if (!tableType)
    goto fail;
  if (PyModule_AddObject(module, "Table", tableType) < 0) {
    Py_DECREF(tableType);
    goto fail;
  }
  return module;
fail:
  Py_DECREF(module);
  return NULL;
}

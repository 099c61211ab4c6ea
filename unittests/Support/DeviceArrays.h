//===- DeviceArrays.h - host/device arrays for GPU tests -------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Host arrays of the kernels' element types (f16/bf16 converted in software),
// device copies through the fusedops runtime, and memref descriptors to pass
// them to JIT-compiled functions. No test framework: the benchmarks use it
// too.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_UNITTESTS_SUPPORT_DEVICEARRAYS_H
#define FUSEDOPS_UNITTESTS_SUPPORT_DEVICEARRAYS_H

#include "fusedops-c/Runtime.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace fusedops::test {

/// Element types the kernels take, as stored on the host.
enum class ElementType { F16, BF16, F32, I32, I64 };

inline const char *mlirName(ElementType type) {
  switch (type) {
  case ElementType::F16: return "f16";
  case ElementType::BF16: return "bf16";
  case ElementType::F32: return "f32";
  case ElementType::I32: return "i32";
  case ElementType::I64: return "i64";
  }
  return "?";
}

inline size_t byteWidth(ElementType type) {
  switch (type) {
  case ElementType::F16:
  case ElementType::BF16: return 2;
  case ElementType::F32:
  case ElementType::I32: return 4;
  case ElementType::I64: return 8;
  }
  return 0;
}

/// IEEE half from float, round to nearest even (subnormals, inf, NaN kept).
inline uint16_t floatToHalf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t exponent = (bits >> 23) & 0xffu;
  uint32_t mantissa = bits & 0x7fffffu;
  if (exponent == 0xff)
    return sign | 0x7c00u | (mantissa ? 0x200u : 0u);
  int32_t e = static_cast<int32_t>(exponent) - 127 + 15;
  if (e >= 31)
    return sign | 0x7c00u;
  if (e <= 0) {
    if (e < -10)
      return sign;
    mantissa |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mantissa >> shift;
    uint32_t rest = mantissa & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u)))
      ++half;
    return sign | half;
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mantissa >> 13);
  uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
    ++half;
  return static_cast<uint16_t>(half);
}

inline float halfToFloat(uint16_t half) {
  uint32_t sign = (half & 0x8000u) << 16;
  uint32_t exponent = (half >> 10) & 0x1fu;
  uint32_t mantissa = half & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {
      float value = std::ldexp(static_cast<float>(mantissa), -24);
      return sign ? -value : value;
    }
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

inline uint16_t floatToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((bits >> 16) | 0x40u);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

inline float bf16ToFloat(uint16_t value) {
  uint32_t bits = static_cast<uint32_t>(value) << 16;
  float result;
  std::memcpy(&result, &bits, 4);
  return result;
}

/// Host array of one element type, read and written as doubles.
class HostArray {
public:
  HostArray(ElementType type, size_t count)
      : type(type), count(count), bytes(count * byteWidth(type)) {}

  ElementType getType() const { return type; }
  size_t size() const { return count; }
  size_t sizeInBytes() const { return bytes.size(); }
  void *data() { return bytes.data(); }

  /// Stores `value` rounded to the element type.
  void set(size_t i, double value) {
    switch (type) {
    case ElementType::F16: store<uint16_t>(i, floatToHalf(static_cast<float>(value))); break;
    case ElementType::BF16: store<uint16_t>(i, floatToBf16(static_cast<float>(value))); break;
    case ElementType::F32: store<float>(i, static_cast<float>(value)); break;
    case ElementType::I32: store<int32_t>(i, static_cast<int32_t>(value)); break;
    case ElementType::I64: store<int64_t>(i, static_cast<int64_t>(value)); break;
    }
  }
  double get(size_t i) const {
    switch (type) {
    case ElementType::F16: return halfToFloat(load<uint16_t>(i));
    case ElementType::BF16: return bf16ToFloat(load<uint16_t>(i));
    case ElementType::F32: return load<float>(i);
    case ElementType::I32: return load<int32_t>(i);
    case ElementType::I64: return static_cast<double>(load<int64_t>(i));
    }
    return 0;
  }
  /// Fresh uniform values in [lo, hi), rounded to the element type.
  void fillRandom(std::mt19937_64 &rng, double lo, double hi) {
    std::uniform_real_distribution<double> dist(lo, hi);
    for (size_t i = 0; i < count; ++i)
      set(i, dist(rng));
  }

private:
  template <typename T> void store(size_t i, T v) {
    std::memcpy(bytes.data() + i * sizeof(T), &v, sizeof(T));
  }
  template <typename T> T load(size_t i) const {
    T v;
    std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
    return v;
  }
  ElementType type;
  size_t count;
  std::vector<unsigned char> bytes;
};

/// A device buffer holding a copy of a HostArray.
class DeviceArray {
public:
  explicit DeviceArray(const HostArray &host) : bytes(host.sizeInBytes()) {
    status = fusedopsMalloc(bytes, &ptr);
    if (!status)
      status = fusedopsMemcpyHtoD(ptr, const_cast<HostArray &>(host).data(), bytes);
  }
  ~DeviceArray() {
    if (ptr)
      fusedopsFree(ptr);
  }
  DeviceArray(const DeviceArray &) = delete;
  DeviceArray &operator=(const DeviceArray &) = delete;

  fusedops_status getStatus() const { return status; }
  void *get() const { return ptr; }
  /// Fills with 0xff bytes: NaN in every float type, so unwritten outputs
  /// fail the comparison.
  fusedops_status poison() { return fusedopsMemsetD8(ptr, 0xff, bytes, nullptr); }
  fusedops_status copyTo(HostArray &host) const {
    return fusedopsMemcpyDtoH(host.data(), ptr, bytes);
  }

private:
  size_t bytes;
  void *ptr = nullptr;
  fusedops_status status = FUSEDOPS_SUCCESS;
};

/// A ranked memref descriptor (MLIR's StridedMemRefType, type-erased).
template <int Rank> struct MemRefDescriptor {
  void *allocated;
  void *aligned;
  int64_t offset;
  int64_t sizes[Rank];
  int64_t strides[Rank];
};

/// Descriptor of a dense row-major buffer of `shape`.
template <int Rank>
MemRefDescriptor<Rank> describe(void *ptr, const std::vector<int64_t> &shape) {
  MemRefDescriptor<Rank> d{ptr, ptr, 0, {}, {}};
  int64_t stride = 1;
  for (int i = Rank - 1; i >= 0; --i) {
    d.sizes[i] = shape[i];
    d.strides[i] = stride;
    stride *= shape[i];
  }
  return d;
}

} // namespace fusedops::test

#endif // FUSEDOPS_UNITTESTS_SUPPORT_DEVICEARRAYS_H

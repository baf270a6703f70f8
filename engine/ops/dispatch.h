// Device dispatch for ops: run the CPU kernel, or its CUDA twin when the tensor lives on a GPU.
#pragma once
#include "engine/error.h"

#ifdef LOWPASS_HAVE_CUDA
#define LP_ON_DEVICE(t, cpu_call, cuda_call) \
  do {                                       \
    if ((t).is_cpu()) {                      \
      cpu_call;                              \
    } else {                                 \
      cuda_call;                             \
    }                                        \
  } while (0)
#else
#define LP_ON_DEVICE(t, cpu_call, cuda_call)                                                   \
  do {                                                                                         \
    LP_CHECK((t).is_cpu(), "a CUDA tensor reached an op, but lowpass was built without CUDA"); \
    cpu_call;                                                                                  \
  } while (0)
#endif

// Both operands on one device and of one dtype.
#define LP_SAME_DEVICE_DTYPE(a, b, opname)                                                         \
  LP_CHECK((a).device() == (b).device() && (a).dtype() == (b).dtype(), opname, ": operands ",     \
           (a).describe(), " and ", (b).describe(), " differ in device or dtype")

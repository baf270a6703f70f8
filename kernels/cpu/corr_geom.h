// The geometry of one conv1d correlation (kernels/cpu/conv1d.h), in a header of its own so that CUDA kernel headers
// (kernels/cuda/conv_direct.h, conv_tiled.h) take the same struct without pulling in the ops.
// Legend: B batch, G groups, C/O input/output channels per group, K taps, d dilation, p left offset, L lengths.
#pragma once
#include <cstdint>

namespace lowpass::cpu {

struct CorrGeom {
  int64_t B, G, C, O;   // batch, groups, input/output channels per group
  int64_t Lin, Lout;    // lengths of x and y
  int64_t K, d, p;      // taps, dilation, left offset (may be negative: a crop)
};

}  // namespace lowpass::cpu

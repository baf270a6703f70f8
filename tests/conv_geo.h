// A conv1d layer's geometry as the conv tests list it (explicit left and right padding), its correlation geometry
// (kernels/cpu/conv1d.h CorrGeom, which the CUDA direct and tiled kernels take too) and a label for INFO.
// Used by tests/test_cuda_direct.cpp and tests/test_cuda_tiled.cpp.
#pragma once
#include <cstdint>
#include <string>

#include "engine/error.h"
#include "kernels/cpu/conv1d.h"

namespace lowpass::test {

struct ConvGeo {
  int64_t B, G, C, O, Lin, K, d, pl, pr;  // batch, groups, in/out channels per group, length, taps, dilation, pads
};

inline cpu::CorrGeom corr_geom(const ConvGeo& q) {
  const int64_t Lout = q.Lin + q.pl + q.pr - q.d * (q.K - 1);
  return {q.B, q.G, q.C, q.O, q.Lin, Lout, q.K, q.d, q.pl};
}

inline std::string geo_str(const ConvGeo& q) {
  return detail::concat("B ", q.B, " G ", q.G, " C ", q.C, " O ", q.O, " Lin ", q.Lin, " K ", q.K, " d ", q.d,
                        " pad ", q.pl, "/", q.pr);
}

}  // namespace lowpass::test

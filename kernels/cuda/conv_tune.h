// The `tune` conv backend (LOWPASS_CUDA_CONV=tune): each dense correlation shape is timed on its first use on
// every route that can take it, and the fastest route serves that shape for the rest of the process, as PyTorch's
// cudnn.benchmark does. Each candidate's output is first checked against the first route's (im2col + cuBLAS): a
// route that disagrees is reported and never chosen.
// This header holds the plain-C++ part (routes, the shape key, the choice among timed candidates), so the host
// test checks it without a GPU (tests/test_cuda_tune.cpp); kernels/cuda/conv1d.cu times the routes on the device.
#pragma once
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

namespace lowpass::cuda {

// A route: one implementation of a correlation. Candidates are tried in this order: a tie goes to the earlier one,
// and the first that runs (im2col + cuBLAS, which takes every shape) is the reference the others must match.
enum class ConvRoute { Im2col, Direct, Tiled, TiledPipelined, Narrow, Taps, Cudnn };
inline constexpr ConvRoute kConvRoutes[] = {ConvRoute::Im2col,         ConvRoute::Direct, ConvRoute::Tiled,
                                            ConvRoute::TiledPipelined, ConvRoute::Narrow, ConvRoute::Taps,
                                            ConvRoute::Cudnn};
// "im2col", "direct", "tiled", "tiled-pipelined", "narrow", "taps", "cudnn"
const char* conv_route_name(ConvRoute r);

enum class ConvDir { Fwd, BwdInput, BwdWeight };
const char* conv_dir_name(ConvDir d);  // "forward", "input-grad", "weight-grad"

// What a choice is cached under: the device, the direction, the correlation's geometry (as CorrGeom), the dtype's
// size, the float32 GEMM math (TF32/bf16 change which routes run) and whether a bias is added.
struct ConvTuneKey {
  int device = 0;
  ConvDir dir = ConvDir::Fwd;
  int64_t B = 0, G = 0, C = 0, O = 0, Lin = 0, Lout = 0, K = 0, d = 0, p = 0;
  int dtype_bytes = 4, gemm_math = 0;
  bool bias = false;
  auto tie() const { return std::tie(device, dir, B, G, C, O, Lin, Lout, K, d, p, dtype_bytes, gemm_math, bias); }
  bool operator<(const ConvTuneKey& o) const { return tie() < o.tie(); }
  std::string describe() const;  // "forward B 256 G 1 C 64 O 64 Lin 1014 Lout 1000 K 15 d 1 p 0 float32"
};

// One candidate's outcome.
struct ConvTrial {
  ConvRoute route = ConvRoute::Im2col;
  bool ran = false;       // false: the route declined the shape (or threw)
  bool agrees = true;     // its output matched the reference's within the tolerance
  double rel_diff = 0;    // ‖out − ref‖ / ‖ref‖
  double ms = 0;          // median of the timed repeats
};

struct ConvTuneEntry {
  ConvTuneKey key;
  ConvRoute chosen = ConvRoute::Im2col;
  std::vector<ConvTrial> trials;
};

// The choice among the trials: the fastest candidate that ran and agrees; on a tie the earlier. -1 when none.
int conv_tune_pick(const std::vector<ConvTrial>& trials);

// Whether the output still holds trial `pick`'s result after every trial ran in order, so that the chosen route
// need not run again: only when `pick` ran, is the last trial attempted and is what the table kept (`stored`). A route
// attempted after it may have written the output before declining: cuDNN's algorithm search runs every algorithm on
// the output buffer and can then decline them all (its weight grad, for want of a deterministic FMA algorithm).
bool conv_tune_output_is(const std::vector<ConvTrial>& trials, int pick, ConvRoute stored);

// Whether an Error thrown by a route is the call's error rather than a decline, given the trials before it: when
// none ran, the route was to be the reference (im2col, the first, takes every shape), so its failure (out of memory,
// a sticky CUDA error) is rethrown; swallowing it made a later route the reference, or aborted when none ran. Errors
// of later routes are declines (cuDNN compiled in but its library not loadable, a workspace that does not fit).
bool conv_tune_rethrows(const std::vector<ConvTrial>& earlier);

// The reference trial, the first that ran; throws Error naming the shape when none ran (every route declined).
int conv_tune_reference(const std::vector<ConvTrial>& trials, const ConvTuneKey& key);

// Median of the timed repeats (the mean of the middle two for an even count); 0 for none.
double conv_tune_median(std::vector<double> ms);

// Relative tolerance between two routes' outputs: routes differ in summation order (double vs float sums, tile
// shapes), and under TF32/bf16 GEMMs some routes round their operands and others do not.
inline double conv_tune_tolerance(int dtype_bytes, int gemm_math) {
  if (gemm_math != 0) return 1e-2;
  return dtype_bytes == 8 ? 1e-10 : 1e-4;
}

// The choices made so far in this process (all devices), in key order; one line per entry with every trial's time
// for conv_tune_report.
std::vector<ConvTuneEntry> conv_tune_entries();
std::string conv_tune_report();
// The cached choice for key, or nullptr (conv1d.cu); conv_tune_store records a new one (a second store of the same
// key, from a thread that timed it at the same time, keeps the first).
const ConvTuneEntry* conv_tune_find(const ConvTuneKey& key);
const ConvTuneEntry& conv_tune_store(ConvTuneEntry e);
// Forgets every choice (tests; a later use of each shape times it again).
void conv_tune_reset();

}  // namespace lowpass::cuda

// parallel_for over [0, n) with the Context's thread count (OpenMP); serial below `grain` items.
#pragma once
#include <omp.h>

#include <cstdint>

#include "engine/context.h"

namespace lowpass::cpu {

template <typename F>
void parallel_for(const Context& ctx, int64_t n, int64_t grain, F&& f) {
  int threads = ctx.threads();
  if (threads <= 1 || n < 2 * grain || omp_in_parallel()) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// Split [0, n) into contiguous chunks, one call per chunk: f(begin, end).
template <typename F>
void parallel_chunks(const Context& ctx, int64_t n, int64_t grain, F&& f) {
  int threads = ctx.threads();
  int64_t chunks = grain > 0 ? (n + grain - 1) / grain : 1;
  if (chunks > threads) chunks = threads;
  if (threads <= 1 || chunks <= 1 || omp_in_parallel()) {
    if (n > 0) f(int64_t{0}, n);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    if (e > b) f(b, e);
  }
}

}  // namespace lowpass::cpu

// Kernels of the fused Fourier-prior chain (engine op fourier_prior_scores; REFERENCE §1.2): for each selected row
// r of attributions a (B, C, L): u = Σ_c |a_r|, s = u ⋆ taps (zero-padded), X = rfft(s), m = |X|,
// D = Σ_f m_f (1 when 0), N = Σ_{f≥1} w_f·m_f, out = 1 − N/D; and the backward da = sign(a)·(taps ⋆ C2Rᵀ(dm·X/|X|)).
// Test: build/tests/lowpass_tests -ts=spectral (CPU) and -ts=cuda (twin). Legend: P rows, F = L/2 + 1.
#pragma once
#include <memory>
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace lowpass {

// What the backward needs from the forward: the spectrum and, per row, N and D.
// Layouts are the backend's own: the CPU keeps the P selected rows (re, im (P, F), nd (P, 2)); CUDA the same rows
// padded with zero rows to Rp = prior_fft_rows(P, B) (spec (Rp, F, 2) interleaved, nd (P, 2)), so that its cuFFT
// plans number at most 8 sizes per batch size (kernels/cuda/prior_tiles.h).
struct PriorSaved {
  Tensor re, im;  // CPU: (P, F)
  Tensor spec;    // CUDA: (Rp, F, 2)
  Tensor nd;      // N, D per selected row
  // CUDA: the spectrum gradient for an upstream gradient of 1, packed for C2R (Rp, F, 2), written by the forward;
  // the first backward's C2R consumes it (cuFFT may overwrite a C2R's input), later ones recompute from spec.
  Tensor unit_dspec;
  mutable bool unit_dspec_used = false;
  bool for_backward = true;  // set by the op: false when no backward can follow (CUDA then skips unit_dspec)
  // CUDA: the row index lists on the device (each batch row's compact row, each compact row's batch row), uploaded
  // by the forward for the backward (one host-to-device copy instead of two).
  std::shared_ptr<void> cuda_pos;
  // CUDA, C <= 4: one byte of sign codes per (compact row, position), written by the forward's smoothing kernel, so
  // the backward reads them instead of the attributions (kernels/cuda/prior_tiles.h).
  std::shared_ptr<void> cuda_signs;
};

namespace cpu {
// out (P) for rows `rows` of attr (B, C, L); weights wf (F) with wf[0] = 0 (DC), taps odd-sized, symmetric.
void fourier_prior_fwd(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& wf,
                       const std::vector<double>& taps, Tensor& out, PriorSaved& saved);
// dattr (B, C, L) = ∂(Σ_p g_p·out_p)/∂attr; rows not selected get 0.
void fourier_prior_bwd(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& wf,
                       const std::vector<double>& taps, const Tensor& g, const PriorSaved& saved, Tensor& dattr);
}  // namespace cpu

namespace cuda {
void fourier_prior_fwd(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& wf,
                       const std::vector<double>& taps, Tensor& out, PriorSaved& saved);
void fourier_prior_bwd(const Tensor& attr, const std::vector<int64_t>& rows, const std::vector<double>& wf,
                       const std::vector<double>& taps, const Tensor& g, const PriorSaved& saved, Tensor& dattr);
}  // namespace cuda

}  // namespace lowpass

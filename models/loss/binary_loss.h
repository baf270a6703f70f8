// Binary task loss (REFERENCE §2.4): class-averaged BCE on sigmoid(logits), labels −1 ignored:
// L = (mean_{y=1} −log σ(z) + mean_{y=0} −log(1−σ(z))) / 2, or the one class present. Legend: B batch, T tasks.
// Test: build/tests/lowpass_tests -ts=loss
#pragma once
#include "engine/ops.h"

namespace lowpass {

// logits (B, T), y (B, T) in {1, 0, −1} (any dtype; compared exactly). Returns a scalar; 0 (constant)
// when no entry is labelled 0 or 1. −log σ(z) is computed as softplus(−z) (stable; the reference's
// BCELoss clamps each log at −100, which only matters for |z| > 100).
Tensor binary_task_loss(const Tensor& logits, const Tensor& y);

// The same loss as Σ pos_w·softplus(−z) + neg_w·softplus(z) with per-label weights made on the host
// (binary_loss_weights), so it reads nothing back: the form a CUDA graph can hold. Equal to binary_task_loss up to
// the order of the sums.
Tensor binary_task_loss_weighted(const Tensor& logits, const Tensor& pos_w, const Tensor& neg_w);
// y (B, T) on the host in {1, 0, −1} → {pos_w, neg_w} (B, T) of dtype `dt`: c/npos on positives and c/nneg on
// negatives, c = 1/2 when both classes are present, else 1; zeros elsewhere.
std::pair<Tensor, Tensor> binary_loss_weights(const Tensor& y, DType dt);

}  // namespace lowpass

// Binary task loss (REFERENCE §2.4): class-averaged BCE on sigmoid(logits), labels −1 ignored:
// L = (mean_{y=1} −log σ(z) + mean_{y=0} −log(1−σ(z))) / 2, or the one class present. Legend: B batch, T tasks.
// Test: build-models/tests/lowpass_tests -ts=loss
#pragma once
#include "engine/ops.h"

namespace lowpass {

// logits (B, T), y (B, T) in {1, 0, −1} (any dtype; compared exactly). Returns a scalar; 0 (constant)
// when no entry is labelled 0 or 1. −log σ(z) is computed as softplus(−z) (stable; the reference's
// BCELoss clamps each log at −100, which only matters for |z| > 100).
Tensor binary_task_loss(const Tensor& logits, const Tensor& y);

}  // namespace lowpass

// Class-averaged binary cross-entropy (REFERENCE §2.4). Test: build/tests/lowpass_tests -ts=loss
#include "models/loss/binary_loss.h"

namespace lowpass {

namespace {
// How many labels are 1 and 0; any label other than 1, 0 or −1 is an Error.
std::pair<int64_t, int64_t> count_labels(const std::vector<double>& y) {
  int64_t npos = 0, nneg = 0;
  for (double v : y) {
    if (v == 1.0) ++npos;
    else if (v == 0.0) ++nneg;
    else LP_CHECK(v == -1.0, "binary loss: label ", v, " is not 1, 0 or -1");
  }
  return {npos, nneg};
}
}  // namespace

Tensor binary_task_loss(const Tensor& logits, const Tensor& y_in) {
  LP_CHECK(logits.defined() && y_in.defined() && logits.shape() == y_in.shape(), "binary loss: labels ",
           y_in.defined() ? shape_str(y_in.shape()) : std::string("missing"), " do not match logits ",
           logits.defined() ? shape_str(logits.shape()) : std::string("missing"));
  Tensor y = y_in.detach();
  if (y.dtype() != logits.dtype()) y = y.to(logits.dtype());
  y = on_device(y, logits.device());
  const auto [npos, nneg] = count_labels(y.to_vector<double>());
  Tensor pos_loss, neg_loss;
  if (npos > 0) pos_loss = mul_scalar(sum_all(mul(softplus(neg(logits)), eq_scalar(y, 1.0))), 1.0 / npos);
  if (nneg > 0) neg_loss = mul_scalar(sum_all(mul(softplus(logits), eq_scalar(y, 0.0))), 1.0 / nneg);
  if (npos > 0 && nneg > 0) return mul_scalar(add(pos_loss, neg_loss), 0.5);
  if (npos > 0) return pos_loss;
  if (nneg > 0) return neg_loss;
  return Tensor::zeros(logits.ctx(), {}, logits.dtype(), logits.device());
}

Tensor binary_task_loss_weighted(const Tensor& logits, const Tensor& pos_w, const Tensor& neg_w) {
  LP_CHECK(logits.defined() && pos_w.defined() && neg_w.defined() && pos_w.shape() == logits.shape() &&
               neg_w.shape() == logits.shape(),
           "binary loss: label weights do not match logits ", logits.defined() ? shape_str(logits.shape()) : "missing");
  return sum_all(add(mul(softplus(neg(logits)), pos_w), mul(softplus(logits), neg_w)));
}

std::pair<Tensor, Tensor> binary_loss_weights(const Tensor& y, DType dt) {
  LP_CHECK(y.defined() && y.dim() == 2, "binary loss: labels must be (B, T)");
  const std::vector<double> v = y.to_vector<double>();
  const auto [npos, nneg] = count_labels(v);
  const double c = npos > 0 && nneg > 0 ? 0.5 : 1.0;
  std::vector<double> pw(v.size(), 0.0), nw(v.size(), 0.0);
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == 1.0) pw[i] = c / static_cast<double>(npos);
    else if (v[i] == 0.0) nw[i] = c / static_cast<double>(nneg);
  }
  Context& ctx = y.ctx();
  return {cast(Tensor::from_vector(ctx, y.shape(), pw), dt), cast(Tensor::from_vector(ctx, y.shape(), nw), dt)};
}

}  // namespace lowpass

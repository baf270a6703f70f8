// Multinomial NLL + weighted MSE of log counts (REFERENCE §3.3). Test: build/tests/lowpass_tests -ts=loss
#include "models/loss/profile_loss.h"

namespace lowpass {

ProfileTaskLoss profile_task_loss(const Tensor& logits, const Tensor& log_counts, const Tensor& y_in,
                                  double counts_loss_weight) {
  LP_CHECK(logits.defined() && logits.dim() == 4, "profile loss: logits must be (B, T, S, O)");
  LP_CHECK(y_in.defined() && y_in.shape() == logits.shape(), "profile loss: counts ",
           y_in.defined() ? shape_str(y_in.shape()) : std::string("missing"), " do not match logits ",
           shape_str(logits.shape()));
  const Shape bts{logits.size(0), logits.size(1), logits.size(2)};
  LP_CHECK(log_counts.defined() && log_counts.shape() == bts, "profile loss: log counts must be ", shape_str(bts));
  Tensor y = y_in.detach();
  if (y.dtype() != logits.dtype()) y = y.to(logits.dtype());
  y = on_device(y, logits.device());
  Tensor n = sum(y, {3});  // (B, T, S) true totals
  Tensor comb;             // lgamma(n+1) − Σ lgamma(y+1): constant in the parameters
  {
    NoGradGuard ng;
    comb = sub(lgamma(add_scalar(n, 1.0)), sum(lgamma(add_scalar(y, 1.0)), {3}));
  }
  Tensor log_prob = add(comb, sum(mul(log_softmax(logits, 3), y), {3}));  // (B, T, S)
  ProfileTaskLoss r;
  r.profile = neg(mean_all(log_prob));
  Tensor target;
  {
    NoGradGuard ng;
    target = log1p(n);
  }
  r.counts = mean_all(square(sub(log_counts, target)));
  r.total = add(r.profile, mul_scalar(r.counts, counts_loss_weight));
  return r;
}

}  // namespace lowpass

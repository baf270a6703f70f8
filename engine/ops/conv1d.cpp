// conv1d and its two adjoints, each differentiable through the other two (so every order works):
// y = conv1d(x, w) + b;  dx = conv1d_input_grad(dy, w);  dw = conv1d_weight_grad(x, dy).
// Test: build/tests/lowpass_tests -ts=conv1d
#include <utility>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#ifdef LOWPASS_HAVE_CUDA
#include "kernels/cuda/conv1d.h"
#endif
#include "kernels/cpu/conv1d.h"

namespace lowpass {

namespace {

using Grads = std::vector<Tensor>;

void check_opts(const Conv1dOpts& o, const char* op) {
  LP_CHECK(o.dilation >= 1, op, ": dilation must be >= 1, got ", o.dilation);
  LP_CHECK(o.pad_left >= 0 && o.pad_right >= 0, op, ": padding must be >= 0, got pad_left ", o.pad_left,
           " pad_right ", o.pad_right);
  LP_CHECK(o.groups >= 1, op, ": groups must be >= 1, got ", o.groups);
}

// Checks w (Cout, Cin/groups, K) against Cin and the options; returns K.
int64_t check_weight(const Tensor& w, int64_t Cin, const Conv1dOpts& o, const char* op) {
  LP_CHECK(w.defined() && w.dim() == 3, op, ": weight must be 3-D (Cout, Cin/groups, K), got ",
           w.defined() ? w.describe() : std::string("undefined"));
  LP_CHECK(Cin % o.groups == 0, op, ": input channels ", Cin, " not divisible by groups ", o.groups);
  LP_CHECK(w.size(0) % o.groups == 0, op, ": output channels ", w.size(0), " not divisible by groups ", o.groups);
  LP_CHECK(w.size(1) == Cin / o.groups, op, ": weight ", w.describe(), " expects ", w.size(1) * o.groups,
           " input channels, got ", Cin);
  LP_CHECK(w.size(2) >= 1, op, ": kernel size must be >= 1, got ", w.describe());
  return w.size(2);
}

int64_t out_length(int64_t L, int64_t K, const Conv1dOpts& o, const char* op) {
  const int64_t Lout = L + o.pad_left + o.pad_right - o.dilation * (K - 1);
  LP_CHECK(Lout >= 1, op, ": input length ", L, " + padding ", o.pad_left, "+", o.pad_right,
           " is shorter than the dilated kernel ", o.dilation * (K - 1) + 1);
  return Lout;
}

}  // namespace

Conv1dOpts Conv1dOpts::same(int64_t k, int64_t dilation) {
  LP_CHECK(k >= 1 && dilation >= 1, "Conv1dOpts::same: kernel size ", k, " and dilation ", dilation, " must be >= 1");
  const int64_t total = dilation * (k - 1);  // odd K: equal sides; even K: the extra column on the right
  return {dilation, total / 2, total - total / 2, 1};
}

namespace {
// conv1d's argument checks; returns the kernel size K and the output length.
std::pair<int64_t, int64_t> check_conv1d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv1dOpts& o) {
  check_opts(o, "conv1d");
  LP_CHECK(x.defined() && x.dim() == 3, "conv1d: input must be 3-D (B, C, L), got ",
           x.defined() ? x.describe() : std::string("undefined"));
  LP_SAME_DEVICE_DTYPE(x, w, "conv1d");
  const int64_t K = check_weight(w, x.size(1), o, "conv1d");
  if (bias.defined()) {
    LP_SAME_DEVICE_DTYPE(x, bias, "conv1d");
    LP_CHECK(bias.dim() == 1 && bias.size(0) == w.size(0), "conv1d: bias must be (", w.size(0), "), got ",
             bias.describe());
  }
  return {K, out_length(x.size(2), K, o, "conv1d")};
}
}  // namespace

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv1dOpts& o) {
  const std::pair<int64_t, int64_t> k_lout = check_conv1d(x, w, bias, o);  // no structured binding: the lambda
  const int64_t K = k_lout.first, Lout = k_lout.second, L = x.size(2);    // captures K (clang < 16 cannot)
  Tensor y = empty_like(x, {x.size(0), w.size(0), Lout});  // (B, Cout, Lout)
  LP_ON_DEVICE(x, cpu::conv1d_fwd_cpu(x, w, bias, y, o), cuda::conv1d_fwd_cuda(x, w, bias, y, o));
  return record("conv1d", y, {x, w, bias}, [x, w, L, K, o](const Tensor& g, const Tensor&, const std::vector<bool>& n) {
    Tensor gx, gw, gb;
    if (n[0]) gx = conv1d_input_grad(g, w, L, o);
    if (n[1]) gw = conv1d_weight_grad(x, g, K, o);
    if (n[2]) gb = sum(g, {0, 2});
    return Grads{gx, gw, gb};
  });
}

Tensor conv1d_relu(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv1dOpts& o, const Tensor& residual) {
  if (x.defined() && x.is_cpu() && !needs_record({&x, &w, &bias, &residual})) {
    const int64_t Lout = check_conv1d(x, w, bias, o).second;
    if (cpu::conv1d_relu_fusable(x, w, o)) {
      Tensor y = empty_like(x, {x.size(0), w.size(0), Lout});  // (B, Cout, Lout)
      if (residual.defined()) {
        LP_SAME_DEVICE_DTYPE(x, residual, "conv1d_relu");
        LP_CHECK(residual.shape() == y.shape(), "conv1d_relu: residual ", residual.describe(),
                 " must be shaped as the output ", shape_str(y.shape()));
      }
      cpu::conv1d_fwd_relu_cpu(x, w, bias, residual, y, o);
      return y;
    }
  }
  Tensor y = relu(conv1d(x, w, bias, o));
  return residual.defined() ? add(y, residual) : y;
}

Tensor conv1d_input_grad(const Tensor& dy, const Tensor& w, int64_t L_in, const Conv1dOpts& o) {
  check_opts(o, "conv1d_input_grad");
  LP_CHECK(dy.defined() && dy.dim() == 3, "conv1d_input_grad: dy must be 3-D (B, Cout, Lout), got ",
           dy.defined() ? dy.describe() : std::string("undefined"));
  LP_SAME_DEVICE_DTYPE(dy, w, "conv1d_input_grad");
  LP_CHECK(w.defined() && w.dim() == 3 && w.size(0) == dy.size(1), "conv1d_input_grad: weight ", w.describe(),
           " does not match dy ", dy.describe());
  const int64_t Cin = w.size(1) * o.groups;
  const int64_t K = check_weight(w, Cin, o, "conv1d_input_grad");
  LP_CHECK(out_length(L_in, K, o, "conv1d_input_grad") == dy.size(2), "conv1d_input_grad: dy length ", dy.size(2),
           " does not match input length ", L_in, " with these options");
  Tensor dx = empty_like(dy, {dy.size(0), Cin, L_in});  // (B, Cin, L)
  LP_ON_DEVICE(dy, cpu::conv1d_bwd_input_cpu(dy, w, dx, o), cuda::conv1d_bwd_input_cuda(dy, w, dx, o));
  return record("conv1d_input_grad", dx, {dy, w},
                [dy, w, K, o](const Tensor& g, const Tensor&, const std::vector<bool>& n) {
                  // <dx, g> = <conv1d(g, w), dy> = <w, conv1d_weight_grad(g, dy)>
                  Tensor gdy, gw;
                  if (n[0]) gdy = conv1d(g, w, Tensor(), o);
                  if (n[1]) gw = conv1d_weight_grad(g, dy, K, o);
                  return Grads{gdy, gw};
                });
}

Tensor conv1d_weight_grad(const Tensor& x, const Tensor& dy, int64_t K, const Conv1dOpts& o) {
  check_opts(o, "conv1d_weight_grad");
  LP_CHECK(x.defined() && x.dim() == 3, "conv1d_weight_grad: x must be 3-D (B, Cin, L), got ",
           x.defined() ? x.describe() : std::string("undefined"));
  LP_CHECK(dy.defined() && dy.dim() == 3, "conv1d_weight_grad: dy must be 3-D (B, Cout, Lout), got ",
           dy.defined() ? dy.describe() : std::string("undefined"));
  LP_SAME_DEVICE_DTYPE(x, dy, "conv1d_weight_grad");
  LP_CHECK(K >= 1, "conv1d_weight_grad: kernel size must be >= 1, got ", K);
  LP_CHECK(x.size(0) == dy.size(0), "conv1d_weight_grad: batch of x ", x.describe(), " and dy ", dy.describe(),
           " differ");
  LP_CHECK(x.size(1) % o.groups == 0 && dy.size(1) % o.groups == 0, "conv1d_weight_grad: channels of ",
           x.describe(), " and ", dy.describe(), " not divisible by groups ", o.groups);
  const int64_t L = x.size(2);
  LP_CHECK(out_length(L, K, o, "conv1d_weight_grad") == dy.size(2), "conv1d_weight_grad: dy length ", dy.size(2),
           " does not match input length ", L, " with these options");
  Tensor dw = empty_like(x, {dy.size(1), x.size(1) / o.groups, K});  // (Cout, Cin/groups, K)
  LP_ON_DEVICE(x, cpu::conv1d_bwd_weight_cpu(x, dy, dw, o), cuda::conv1d_bwd_weight_cuda(x, dy, dw, o));
  return record("conv1d_weight_grad", dw, {x, dy},
                [x, dy, L, o](const Tensor& g, const Tensor&, const std::vector<bool>& n) {
                  // <dw, g> = <x, conv1d_input_grad(dy, g)> = <dy, conv1d(x, g)>
                  Tensor gx, gdy;
                  if (n[0]) gx = conv1d_input_grad(dy, g, L, o);
                  if (n[1]) gdy = conv1d(x, g, Tensor(), o);
                  return Grads{gx, gdy};
                });
}

}  // namespace lowpass

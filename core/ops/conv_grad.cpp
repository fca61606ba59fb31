// conv2d's backward as differentiable ops, for create_graph sweeps (higher-order derivatives).
//
// A convolution y = conv(x, w) is bilinear, so its two gradient maps are linear in each argument:
//   conv2d_input_grad(dY, W)  = dX = d<dY, conv(x, W)>/dx   (independent of x)
//   conv2d_weight_grad(X, dY) = dW = d<dY, conv(X, w)>/dw   (independent of w)
// and their own gradients are again convolutions or each other (u is the upstream gradient):
//   input_grad:  d/d(dY) = conv(u, W)        d/dW = weight_grad(u, dY)
//   weight_grad: d/dX    = input_grad(dY, u) d/d(dY) = conv(X, u)
// so these three ops differentiate to any order. Their forwards are the products of the path the
// convolution took (direct, else im2col).
#include "core/ops.h"
#include "core/ops/conv_internal.h"

namespace scalpel {
namespace conv_detail {

namespace {
// The forward's own path, so a second sweep computes what the first-order backward would.
Conv2dParams params_of(const ConvGeom& g) { return Conv2dParams().stride(g.sh, g.sw).padding(g.ph, g.pw).algo(g.path); }
void weight_grad_into(const float* x, const float* dy, const ConvGeom& g, float* dw) {
  if (g.path == ConvAlgo::kDirect) return direct_weight_grad_into(x, dy, g, dw);
  im2col_weight_grad_into(x, dy, g, dw);
}
void input_grad_into(const float* w, const float* dy, const ConvGeom& g, float* dx) {
  if (g.path == ConvAlgo::kDirect) return direct_input_grad_into(w, dy, g, dx);
  im2col_input_grad_into(w, dy, g, dx);
}
}  // namespace

// dy [N, O, Ho, Wo], w [O, C, kh, kw] -> dx [N, C, H, W]
Tensor conv2d_input_grad(const Tensor& dy, const Tensor& w, const ConvGeom& g) {
  const Tensor dyc = dy.contiguous(), wc = w.contiguous();
  Tensor out = make_tensor({g.N, g.C, g.H, g.W});
  input_grad_into(wc.data(), dyc.data(), g, out.data());
  if (should_record({dy, w})) {
    SavedTensor sdy = w.requires_grad() ? save(dy, "conv2d_input_grad") : SavedTensor();
    SavedTensor sw = dy.requires_grad() ? save(w, "conv2d_input_grad") : SavedTensor();
    record("conv2d_input_grad", out, {dy, w}, [sdy, sw, g](const Tensor& u, GradSink& s) {
      if (s.needs(0)) s.add(0, conv2d(u, s.saved(sw), Tensor(), params_of(g)));
      if (s.needs(1)) s.add(1, conv2d_weight_grad(u, s.saved(sdy), g));
    });
  }
  return out;
}

// x [N, C, H, W], dy [N, O, Ho, Wo] -> dw [O, C, kh, kw]
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& dy, const ConvGeom& g) {
  const Tensor xc = x.contiguous(), dyc = dy.contiguous();
  Tensor out = make_tensor({g.O, g.C, g.kh, g.kw});
  weight_grad_into(xc.data(), dyc.data(), g, out.data());
  if (should_record({x, dy})) {
    SavedTensor sx = dy.requires_grad() ? save(x, "conv2d_weight_grad") : SavedTensor();
    SavedTensor sdy = x.requires_grad() ? save(dy, "conv2d_weight_grad") : SavedTensor();
    record("conv2d_weight_grad", out, {x, dy}, [sx, sdy, g](const Tensor& u, GradSink& s) {
      if (s.needs(0)) s.add(0, conv2d_input_grad(s.saved(sdy), u, g));
      if (s.needs(1)) s.add(1, conv2d(s.saved(sx), u, Tensor(), params_of(g)));
    });
  }
  return out;
}

void backward_graph(const Tensor& grad_out, const SavedTensor& sx, const SavedTensor& sw, const ConvGeom& g,
                    GradSink& s) {
  if (s.needs(0)) s.add(0, conv2d_input_grad(grad_out, s.saved(sw), g));
  if (s.needs(1)) s.add(1, conv2d_weight_grad(s.saved(sx), grad_out, g));
  if (s.needs(2)) s.add(2, sum(grad_out, {0, 2, 3}));
}

}  // namespace conv_detail
}  // namespace scalpel

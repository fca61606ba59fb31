// Reverse-mode automatic differentiation: the tape node, saved tensors, grad mode, and the engine
// behind `backward()` and the functional `grad()`.
//
// Recording. An op records a Node only when grad mode is on (see NoGradGuard) and at least one
// input requires grad. The node keeps one edge per input (null for inputs that need no grad), the
// input shapes, and a backward closure that captures only what it needs through SavedTensor.
// Ops keep that closure right next to their forward code (see core/ops/*.cpp):
//
//   Tensor out = ...forward...;
//   if (should_record({a, b}))
//     record("mul", out, {a, b}, [sa = save(a, "mul"), sb = save(b, "mul")](const Tensor& g, GradSink& s) {
//       if (s.needs(0)) s.add(0, mul(g, sb.get()));
//       if (s.needs(1)) s.add(1, mul(g, sa.get()));
//     });
//
// Backward closures run under NoGradGuard. They ADD their input gradients through the GradSink:
// `add(i, g)` for a computed tensor (the engine sums a broadcast gradient down to the input's
// shape, centrally), or `accumulate(i)` for a contiguous buffer to write into with BLAS beta.
//
// Higher order. `grad(..., create_graph=true)` records the backward pass itself, so a gradient can
// be differentiated again (Hessian-vector products, hypergradients; see core/higher_order.h). The
// closures then run with grad mode ON and must build their gradients from differentiable ops:
// each op's closure checks `s.create_graph()` and takes its composite branch (fused kernels and
// accumulate() stay on the first-order path, which is unchanged). Saved tensors keep their link to
// the graph: `s.saved(sv)` is the saved input with its history, or, for a tensor saved with
// save_output(), the output re-attached to this very node (so y = exp(x) differentiates again
// through exp). Every op has a second-order gradcheck (tests/core/test_gradgrad*.cpp).
//
// The engine. Traversal and teardown are iterative (no recursion), so chains of 10^5+ nodes work.
// Nodes run in decreasing creation order, a deterministic topological order, and every gradient
// sum happens in that order, so results are bit-for-bit reproducible. After a sweep the executed
// nodes drop their saved tensors unless `retain_graph` is set; a second sweep through a released
// node raises an error naming the op. A graph must not be differentiated from two threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace scalpel {

// ---- grad mode ----------------------------------------------------------------------------------

bool grad_enabled();
void set_grad_enabled(bool enabled);

// RAII: disables recording on this thread for its lifetime (thread-local, nests correctly).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// RAII: enables recording on this thread for its lifetime.
class EnableGradGuard {
 public:
  EnableGradGuard() : prev_(grad_enabled()) { set_grad_enabled(true); }
  ~EnableGradGuard() { set_grad_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

// ---- saved tensors ------------------------------------------------------------------------------

// A tensor saved by an op for its backward: a detached handle plus the storage version at save
// time. `get()` throws std::runtime_error naming the op if the tensor was changed in place since.
// A tensor that required grad when saved also keeps its graph link (for create_graph sweeps, read
// it through GradSink::saved); an op's own output is saved with save_output() instead, which
// keeps no link (that would be a cycle) but lets GradSink::saved re-attach it to the node.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t, const char* op, bool is_output = false);
  const Tensor& get() const;
  bool defined() const { return t_.defined() || recipe_ != nullptr; }

 private:
  friend class GradSink;
  Tensor t_;
  std::shared_ptr<const Recompute> recipe_;  // instead of t_: rebuild on first get()
  std::shared_ptr<Node> producer_;           // the recipe's tensor's node (create_graph re-attaches to it)
  std::shared_ptr<Tensor> cache_;            // the rebuilt tensor, shared by copies of this handle
  Tensor graph_;                             // t itself (with its history) when it required grad at save time
  uint64_t version_ = 0;
  const char* op_ = "";
  bool is_output_ = false;
};
inline SavedTensor save(const Tensor& t, const char* op) { return SavedTensor(t, op); }
// Saves the op's own output (call it before record(), as for save()).
inline SavedTensor save_output(const Tensor& out, const char* op) { return SavedTensor(out, op, true); }

// ---- recomputed saved tensors ------------------------------------------------------------------

// An op whose output is cheap to rebuild from what its own node already keeps attaches a recipe to
// that output with set_recompute(). A later op that saves the output for backward then keeps the
// recipe instead of the storage, so the output's memory is freed as soon as the forward pass is
// done with it, and the saving node's backward rebuilds it (once, on its first get()). batch_norm
// and batch_norm_relu use it: in a ResNet block the next convolution saves BN's output, while BN
// itself already keeps its input, so one of the block's four saved activations goes (ResNet-18
// width 64: peak RSS -37 MB at batch 32, -152 MB at batch 128; docs/performance-notes.md, Finding
// 8). The recipe must rebuild the same bits as the forward (tests/core/test_recompute.cpp checks
// gradients bit for bit with it on and off). It describes the output at one storage version: once
// the output is modified in place, later saves keep the storage as usual; a save taken before the
// change still rebuilds the saved values.
struct Recompute {
  std::function<Tensor()> fn;  // rebuilds the values (runs under NoGradGuard)
  uint64_t version = 0;        // the output's storage version the recipe describes
};
// Attaches `fn` as out's recipe (call it after record(), while out is unchanged).
void set_recompute(Tensor& out, std::function<Tensor()> fn);
// On by default; SCALPEL_RECOMPUTE=0 in the environment or set_recompute_enabled(false) makes saves
// keep storages again (to compare memory, or to rule the recipes out). Affects saves made afterwards.
bool recompute_enabled();
void set_recompute_enabled(bool enabled);

// ---- the tape node ------------------------------------------------------------------------------

class GradSink;
class Engine;

class Node : public std::enable_shared_from_this<Node> {
 public:
  // grad_out has the shape of the node's output.
  using BackwardFn = std::function<void(const Tensor& grad_out, GradSink& sink)>;

  Node(const char* name, std::vector<std::shared_ptr<Node>> next, std::vector<Shape> input_shapes, BackwardFn fn);
  // Leaf accumulator: gradients flowing into it are added to `leaf`'s grad.
  explicit Node(std::shared_ptr<TensorImpl> leaf);
  ~Node();  // iterative: tears down long chains without recursion
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const char* name() const { return name_; }
  const std::vector<std::shared_ptr<Node>>& next() const { return next_; }
  const std::vector<Shape>& input_shapes() const { return input_shapes_; }
  uint64_t sequence_nr() const { return seq_; }
  bool is_accumulator() const { return leaf_ != nullptr; }
  const std::shared_ptr<TensorImpl>& leaf() const { return leaf_; }
  bool released() const { return released_; }

 private:
  friend class Engine;
  friend class GradSink;
  const char* name_;
  std::vector<std::shared_ptr<Node>> next_;
  std::vector<Shape> input_shapes_;
  BackwardFn fn_;
  std::shared_ptr<TensorImpl> leaf_;
  uint64_t seq_;
  bool released_ = false;
  int64_t engine_index_ = -1;  // scratch for the engine during a sweep
};

// What a backward closure writes its input gradients into.
class GradSink {
 public:
  // True if input i needs a gradient in this sweep (requires grad and leads to a wanted tensor).
  bool needs(size_t i) const;
  // Adds g to input i's gradient. g may have a broadcast shape; it is summed down to the input's.
  void add(size_t i, const Tensor& g);
  // A contiguous buffer shaped like input i to accumulate into; `beta` is 0 when the buffer is
  // fresh (uninitialised, overwrite it) and 1 when it already holds a partial sum (add to it).
  // Finish writing before calling accumulate() again for the same or another input.
  struct Accum {
    float* data;
    float beta;
    Tensor buffer;
  };
  // Not available when create_graph() is set (throws std::logic_error naming the op).
  Accum accumulate(size_t i);
  const Shape& input_shape(size_t i) const;
  const char* op() const;
  // True in a create_graph sweep: build gradients from differentiable ops (grad mode is on).
  bool create_graph() const;
  // The saved tensor as this sweep should use it: get() normally; in a create_graph sweep the
  // tensor with its graph link (or the output re-attached to this node, for save_output()).
  Tensor saved(const SavedTensor& t) const;

 private:
  friend class Engine;
  GradSink(Engine* engine, Node* node) : engine_(engine), node_(node) {}
  Engine* engine_;
  Node* node_;
};

// ---- recording helpers for op implementations ------------------------------------------------

// True when grad mode is on and some input requires grad.
bool should_record(std::initializer_list<Tensor> inputs);
bool should_record(const std::vector<Tensor>& inputs);
// Creates the node for `out` with edges to `inputs` and marks `out` as requiring grad.
void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, Node::BackwardFn fn);

// ---- running the engine ------------------------------------------------------------------------

struct GradOptions {
  bool retain_graph = false;  // keep saved tensors so the graph can be differentiated again
  bool allow_unused = false;  // an input the outputs do not depend on gets a zero gradient
  bool create_graph = false;  // record the backward pass so its results can be differentiated again
                              // (implies retain_graph; grad() only, not grad_into or backward)
  std::vector<Tensor> seeds;  // d(something)/d(output_i); required for non-scalar outputs
  GradOptions& set_retain_graph(bool v) {
    retain_graph = v;
    return *this;
  }
  GradOptions& set_allow_unused(bool v) {
    allow_unused = v;
    return *this;
  }
  GradOptions& set_create_graph(bool v) {
    create_graph = v;
    return *this;
  }
  GradOptions& set_seeds(std::vector<Tensor> s) {
    seeds = std::move(s);
    return *this;
  }
};

// Accumulates d(sum_i <seed_i, output_i>)/d(leaf) into every reachable leaf's grad().
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& seeds = {}, bool retain_graph = false);

// Functional gradients of the outputs with respect to `inputs` (leaves or intermediate tensors),
// without touching any .grad. Throws for an input that does not require grad, and for an unused
// input unless `allow_unused` (then its gradient is zeros of its shape).
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const GradOptions& options = GradOptions());

// As grad(), but ADDS the gradients into caller-provided contiguous buffers shaped like the
// inputs (e.g. views into one GradVector), avoiding any extra copy. Unused inputs are left as is
// when allow_unused is set.
void grad_into(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
               const std::vector<Tensor>& buffers, const GradOptions& options = GradOptions());

}  // namespace scalpel

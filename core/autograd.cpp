#include "core/autograd.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "core/kernels/loops.h"
#include "core/ops.h"

namespace scalpel {

// ---- grad mode ----------------------------------------------------------------------------------

namespace {
thread_local bool t_grad_enabled = true;
std::atomic<uint64_t> g_next_sequence_nr{0};
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool enabled) { t_grad_enabled = enabled; }

// ---- SavedTensor --------------------------------------------------------------------------------

namespace {

std::atomic<bool>& recompute_flag() {
  static std::atomic<bool> flag{[] {
    const char* v = std::getenv("SCALPEL_RECOMPUTE");
    if (!v || !*v || std::string(v) == "1") return true;
    if (std::string(v) == "0") return false;
    throw std::invalid_argument(std::string("SCALPEL_RECOMPUTE: expected 0 (saved tensors keep their storage) or 1 "
                                            "(cheap outputs are rebuilt in backward, the default), found '") +
                                v + "'");
  }()};
  return flag;
}

}  // namespace

bool recompute_enabled() { return recompute_flag().load(std::memory_order_relaxed); }
void set_recompute_enabled(bool enabled) { recompute_flag().store(enabled, std::memory_order_relaxed); }

void set_recompute(Tensor& out, std::function<Tensor()> fn) {
  if (!out.defined()) throw std::invalid_argument("set_recompute: the output is undefined");
  auto r = std::make_shared<Recompute>();
  r->fn = std::move(fn);
  r->version = out.version();
  out.impl()->recompute = std::move(r);
}

SavedTensor::SavedTensor(const Tensor& t, const char* op, bool is_output) : op_(op), is_output_(is_output) {
  if (!t.defined()) return;
  const std::shared_ptr<const Recompute>& r = t.impl()->recompute;
  if (r && !is_output && r->version == t.version() && recompute_enabled()) {
    recipe_ = r;
    producer_ = t.requires_grad() ? t.impl()->grad_fn : nullptr;
    cache_ = std::make_shared<Tensor>();
    return;
  }
  t_ = t.detach();
  if (!is_output && t.requires_grad()) graph_ = t;
  version_ = t.version();
}

const Tensor& SavedTensor::get() const {
  if (recipe_) {               // the recipe checks the versions of what it reads itself
    if (!cache_->defined()) {  // one sweep at a time per graph (see the header), so no lock
      NoGradGuard no_grad;
      *cache_ = recipe_->fn();
    }
    return *cache_;
  }
  if (t_.defined() && t_.version() != version_) {
    std::ostringstream os;
    os << op_ << ": a tensor saved for backward (shape " << shape_str(t_.shape())
       << ") was modified in place after the forward pass (version " << version_ << " -> " << t_.version()
       << "); clone() it before modifying, or modify a copy";
    throw std::runtime_error(os.str());
  }
  return t_;
}

// ---- Node ---------------------------------------------------------------------------------------

Node::Node(const char* name, std::vector<std::shared_ptr<Node>> next, std::vector<Shape> input_shapes, BackwardFn fn)
    : name_(name),
      next_(std::move(next)),
      input_shapes_(std::move(input_shapes)),
      fn_(std::move(fn)),
      seq_(g_next_sequence_nr.fetch_add(1, std::memory_order_relaxed)) {}

Node::Node(std::shared_ptr<TensorImpl> leaf)
    : name_("accumulate_grad"),
      input_shapes_{leaf->shape},
      leaf_(std::move(leaf)),
      seq_(g_next_sequence_nr.fetch_add(1, std::memory_order_relaxed)) {}

Node::~Node() {
  // Take ownership of children whose last reference is ours and free them one by one, so that a
  // chain of any length is destroyed without recursion. A closure's saved tensors may hold graph
  // references too (the inputs' history, for create_graph), so each closure is dropped before its
  // node's children are examined.
  fn_ = nullptr;
  std::vector<std::shared_ptr<Node>> stack;
  for (auto& n : next_) {
    if (n) stack.push_back(std::move(n));
  }
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    if (n.use_count() == 1) {
      n->fn_ = nullptr;
      for (auto& c : n->next_) {
        if (c) stack.push_back(std::move(c));
      }
    }
  }
}

// ---- recording ----------------------------------------------------------------------------------

bool should_record(std::initializer_list<Tensor> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

bool should_record(const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

namespace {
// The node gradients of `t` flow into: its grad_fn, or (for a leaf) its accumulator.
std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  TensorImpl* impl = t.impl();
  if (!impl->requires_grad) return nullptr;
  if (impl->grad_fn) return impl->grad_fn;
  std::shared_ptr<Node> acc = impl->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<Node>(t.impl_ptr());
    impl->grad_accumulator = acc;
  }
  return acc;
}
}  // namespace

void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, Node::BackwardFn fn) {
  std::vector<std::shared_ptr<Node>> next;
  std::vector<Shape> shapes;
  next.reserve(inputs.size());
  shapes.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) {
      next.push_back(gradient_edge(t));
      shapes.push_back(t.shape());
    } else {
      next.push_back(nullptr);
      shapes.push_back(t.defined() ? t.shape() : Shape{});
    }
  }
  TensorImpl* impl = out.impl();
  impl->requires_grad = true;
  impl->grad_fn = std::make_shared<Node>(name, std::move(next), std::move(shapes), std::move(fn));
}

// ---- the engine ---------------------------------------------------------------------------------

namespace {
// True when nobody but `t` holds its storage and it covers it exactly: safe to add into in place.
// (Both counts matter: several Tensor handles can share one impl, several impls one storage.)
bool exclusively_owned(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.storage().use_count() == 1 && t.offset() == 0 && t.is_contiguous() &&
         t.numel() == t.storage()->size();
}
}  // namespace

class Engine {
 public:
  enum class Mode { Backward, Grad };

  struct Slot {
    Tensor buf;          // the gradient summed so far (undefined: nothing yet)
    bool owned = false;  // buf may be written in place (leaf .grad, caller buffers)
  };

  Engine(Mode mode, bool retain_graph, bool create_graph = false)
      : mode_(mode), retain_(retain_graph || create_graph), create_graph_(create_graph) {}

  bool create_graph() const { return create_graph_; }

  // Collects the graph reachable from `roots` in post-order with dependency counts. Nodes older
  // than `min_seq` are left out: a node's inputs are always older than it, so nothing below such
  // a node can be a target (grad() of a recent tensor then never walks the whole history, e.g. in
  // an unrolled inner loop).
  void build(const std::vector<Node*>& roots, uint64_t min_seq = 0) {
    struct Frame {
      Node* node;
      size_t child;
    };
    std::vector<Frame> stack;
    for (Node* r : roots) {
      if (r->engine_index_ >= 0) continue;
      r->engine_index_ = static_cast<int64_t>(nodes_.size());
      nodes_.push_back(r);
      deps_.push_back(0);
      stack.push_back({r, 0});
      while (!stack.empty()) {
        Frame& f = stack.back();
        if (f.child < f.node->next_.size()) {
          Node* c = f.node->next_[f.child++].get();
          if (!c || c->seq_ < min_seq) continue;
          if (c->engine_index_ < 0) {
            c->engine_index_ = static_cast<int64_t>(nodes_.size());
            nodes_.push_back(c);
            deps_.push_back(0);
            stack.push_back({c, 0});
          }
          ++deps_[c->engine_index_];
        } else {
          order_.push_back(f.node);  // children before parents
          stack.pop_back();
        }
      }
    }
    slots_.resize(nodes_.size());
    needed_.assign(nodes_.size(), false);
    execute_.assign(nodes_.size(), false);
  }

  // Marks which nodes must run: those leading to a wanted node (accumulators in backward mode,
  // capture targets in grad mode).
  void mark_needed(const std::vector<Node*>& targets) {
    std::vector<char> wanted(nodes_.size(), 0);
    for (Node* t : targets) {
      if (t->engine_index_ >= 0) wanted[t->engine_index_] = 1;
    }
    for (Node* n : order_) {
      const int64_t i = n->engine_index_;
      bool child_needed = false;
      for (const auto& c : n->next_) {
        if (c && in_graph(c.get()) && needed_[c->engine_index_]) child_needed = true;
      }
      if (mode_ == Mode::Backward) {
        execute_[i] = n->is_accumulator() || child_needed;
        needed_[i] = execute_[i];
      } else {
        execute_[i] = child_needed;
        needed_[i] = child_needed || wanted[i];
      }
    }
  }

  void seed(Node* root, const Tensor& g) { add_to(root->engine_index_, g, root->name_, g.shape()); }

  // Backward mode: leaves that already have a contiguous grad accumulate straight into it, so a
  // BLAS beta = 1 write in an op's backward lands in .grad with no temporary.
  void prefill_leaf_grads() {
    for (Node* n : nodes_) {
      if (!n->is_accumulator() || !n->leaf_->grad) continue;
      Tensor g(n->leaf_->grad);
      if (g.is_contiguous()) prefill(n, g);
    }
  }

  void prefill(Node* n, const Tensor& buf) {
    Slot& s = slots_[n->engine_index_];
    s.buf = buf;
    s.owned = true;
  }

  void capture(Node* n, size_t k) { captures_[n].push_back(k); }

  void run(std::vector<Tensor>* captured) {
    const bool prev_mode = grad_enabled();
    set_grad_enabled(create_graph_);
    struct Restore {
      bool mode;
      ~Restore() { set_grad_enabled(mode); }
    } restore{prev_mode};
    auto cmp = [](Node* a, Node* b) { return a->seq_ < b->seq_; };
    std::priority_queue<Node*, std::vector<Node*>, decltype(cmp)> ready(cmp);
    for (Node* n : nodes_) {
      if (deps_[n->engine_index_] == 0) ready.push(n);
    }
    while (!ready.empty()) {
      Node* n = ready.top();
      ready.pop();
      const int64_t i = n->engine_index_;
      Slot& slot = slots_[i];
      if (captured && slot.buf.defined()) {
        auto it = captures_.find(n);
        if (it != captures_.end()) {
          for (size_t k : it->second) (*captured)[k] = slot.buf;
        }
      }
      if (execute_[i] && slot.buf.defined()) {
        if (n->is_accumulator()) {
          accumulate_leaf(n, slot);
        } else {
          if (n->released_) {
            throw std::runtime_error(std::string(n->name_) +
                                     ": trying to differentiate through this part of the graph a "
                                     "second time, but its saved tensors were already freed; pass "
                                     "retain_graph=true to the first backward/grad call");
          }
          GradSink sink(this, n);
          n->fn_(slot.buf, sink);
          if (!retain_) {
            n->fn_ = nullptr;
            n->released_ = true;
          }
        }
      }
      slot.buf = Tensor();
      for (const auto& c : n->next_) {
        if (!c || !in_graph(c.get())) continue;  // left out by build()'s min_seq
        if (--deps_[c->engine_index_] == 0) ready.push(c.get());
      }
    }
  }

  ~Engine() {
    for (Node* n : nodes_) n->engine_index_ = -1;
  }

  // Adds g into node idx's slot; g is summed down to `shape` first if it was broadcast.
  void add_to(int64_t idx, const Tensor& g_in, const char* op, const Shape& shape) {
    Tensor g = g_in;
    if (g.shape() != shape) {
      bool summable = false;  // g is a broadcast of `shape`
      try {
        summable = broadcast_shapes(shape, g.shape(), op) == g.shape();
      } catch (const std::invalid_argument&) {
      }
      if (shape_numel(g.shape()) != shape_numel(shape) && !summable) {
        throw std::logic_error(std::string(op) + ": backward produced a gradient of shape " + shape_str(g.shape()) +
                               " for an input of shape " + shape_str(shape));
      }
      g = shape_numel(g.shape()) == shape_numel(shape) ? g.reshape(shape) : sum_to(g, shape);
    }
    Slot& s = slots_[idx];
    if (!s.buf.defined()) {
      s.buf = g;
      s.owned = false;
      return;
    }
    if (create_graph_) {  // a recorded sum, never in place (either side may carry history)
      s.buf = add(s.buf, g);
      s.owned = false;
      return;
    }
    if (s.owned || exclusively_owned(s.buf)) {
      kernels::binary_inplace(s.buf, g, [](float a, float b) { return a + b; });
      s.buf.storage()->bump_version();
      s.owned = true;
    } else {
      s.buf = kernels::map2(s.buf, g, s.buf.shape(), [](float a, float b) { return a + b; });
      s.owned = true;
    }
  }

  GradSink::Accum accumulate_buffer(int64_t idx, const Shape& shape, const char* op) {
    if (create_graph_) {
      throw std::logic_error(std::string(op) +
                             ": accumulate() is not available in a create_graph sweep; the op's backward must "
                             "take its differentiable branch when GradSink::create_graph() is set");
    }
    Slot& s = slots_[idx];
    if (!s.buf.defined()) {
      s.buf = make_tensor(shape);
      s.owned = true;
      return {s.buf.data(), 0.0f, s.buf};
    }
    if (!(s.owned || exclusively_owned(s.buf)) || !s.buf.is_contiguous()) {
      s.buf = s.buf.clone();
    }
    s.owned = true;
    s.buf.storage()->bump_version();
    return {s.buf.data(), 1.0f, s.buf};
  }

  static bool in_graph(const Node* n) { return n->engine_index_ >= 0; }

  bool child_needed(Node* n, size_t i) const {
    const auto& c = n->next_[i];
    return c && in_graph(c.get()) && needed_[c->engine_index_];
  }

 private:
  void accumulate_leaf(Node* n, Slot& slot) {
    TensorImpl* leaf = n->leaf_.get();
    const Tensor& g = slot.buf;
    if (leaf->grad && leaf->grad == g.impl_ptr()) return;  // accumulated in place already
    if (!leaf->grad) {
      leaf->grad = exclusively_owned(g) ? g.impl_ptr() : g.clone().impl_ptr();
    } else {
      Tensor dst(leaf->grad);
      kernels::binary_inplace(dst, g, [](float a, float b) { return a + b; });
      dst.storage()->bump_version();
    }
  }

  Mode mode_;
  bool retain_;
  bool create_graph_;
  std::vector<Node*> nodes_;
  std::vector<Node*> order_;
  std::vector<int64_t> deps_;
  std::vector<Slot> slots_;
  std::vector<char> needed_;
  std::vector<char> execute_;
  std::unordered_map<Node*, std::vector<size_t>> captures_;
};

bool GradSink::needs(size_t i) const { return i < node_->next_.size() && engine_->child_needed(node_, i); }

void GradSink::add(size_t i, const Tensor& g) {
  if (!needs(i)) return;
  Node* c = node_->next_[i].get();
  engine_->add_to(c->engine_index_, g, node_->name_, node_->input_shapes_[i]);
}

GradSink::Accum GradSink::accumulate(size_t i) {
  if (!needs(i)) {
    throw std::logic_error(std::string(node_->name_) + ": accumulate() called for input " + std::to_string(i) +
                           " which needs no gradient (check needs(i) first)");
  }
  Node* c = node_->next_[i].get();
  return engine_->accumulate_buffer(c->engine_index_, node_->input_shapes_[i], node_->name_);
}

bool GradSink::create_graph() const { return engine_->create_graph(); }

Tensor GradSink::saved(const SavedTensor& t) const {
  const Tensor& plain = t.get();  // checks the version
  if (!engine_->create_graph() || !plain.defined()) return plain;
  if (t.graph_.defined()) return t.graph_;
  // A rebuilt tensor is re-attached to the node that produced it, a saved output to this node.
  std::shared_ptr<Node> producer = t.recipe_ ? t.producer_ : (t.is_output_ ? node_->shared_from_this() : nullptr);
  if (!producer) return plain;  // saved without history: a constant of this op
  Tensor out = plain.detach();
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = std::move(producer);
  return out;
}

const Shape& GradSink::input_shape(size_t i) const { return node_->input_shapes_[i]; }
const char* GradSink::op() const { return node_->name_; }

// ---- public entry points ------------------------------------------------------------------------

namespace {

std::vector<Node*> root_nodes(const std::vector<Tensor>& outputs, const std::vector<Tensor>& seeds, const char* api,
                              std::vector<Tensor>* seed_values) {
  if (!seeds.empty() && seeds.size() != outputs.size()) {
    throw std::invalid_argument(std::string(api) + ": got " + std::to_string(seeds.size()) + " seeds for " +
                                std::to_string(outputs.size()) + " outputs (give one per output, or none)");
  }
  std::vector<Node*> roots;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const Tensor& out = outputs[k];
    if (!out.defined())
      throw std::invalid_argument(std::string(api) + ": output " + std::to_string(k) + " is undefined");
    if (!out.requires_grad()) {
      throw std::invalid_argument(std::string(api) + ": output " + std::to_string(k) + " (shape " +
                                  shape_str(out.shape()) +
                                  ") does not require grad: nothing it was computed from requires grad, "
                                  "or it was computed under NoGradGuard");
    }
    Tensor s = seeds.empty() ? Tensor() : seeds[k];
    if (!s.defined()) {
      if (out.numel() != 1) {
        throw std::invalid_argument(std::string(api) + ": output " + std::to_string(k) + " has shape " +
                                    shape_str(out.shape()) +
                                    "; a seed (gradient of the same shape) is required for a non-scalar "
                                    "output");
      }
      s = Tensor::ones(out.shape());
    } else {
      check_same_shape(s.shape(), out.shape(), api, "the seed");
    }
    seed_values->push_back(s);
    Node* r = out.grad_fn() ? out.grad_fn().get() : nullptr;
    roots.push_back(r);
  }
  return roots;
}

// Keeps accumulators of leaf outputs alive for the sweep.
std::vector<std::shared_ptr<Node>> leaf_roots(const std::vector<Tensor>& outputs, std::vector<Node*>& roots) {
  std::vector<std::shared_ptr<Node>> keep;
  for (size_t k = 0; k < outputs.size(); ++k) {
    if (!roots[k]) {
      keep.push_back(gradient_edge(outputs[k]));
      roots[k] = keep.back().get();
    }
  }
  return keep;
}

}  // namespace

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& seeds, bool retain_graph) {
  std::vector<Tensor> seed_values;
  std::vector<Node*> roots = root_nodes(outputs, seeds, "backward", &seed_values);
  auto keep = leaf_roots(outputs, roots);
  Engine engine(Engine::Mode::Backward, retain_graph);
  engine.build(roots);
  engine.mark_needed({});
  engine.prefill_leaf_grads();
  for (size_t k = 0; k < roots.size(); ++k) engine.seed(roots[k], seed_values[k]);
  engine.run(nullptr);
}

namespace {
void run_grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs, const std::vector<Tensor>* buffers,
              const GradOptions& options, std::vector<Tensor>& result) {
  const char* api = buffers ? "grad_into" : "grad";
  std::vector<Tensor> seed_values;
  std::vector<Node*> roots = root_nodes(outputs, options.seeds, api, &seed_values);
  auto keep = leaf_roots(outputs, roots);
  std::vector<std::shared_ptr<Node>> targets;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& in = inputs[k];
    if (!in.defined()) throw std::invalid_argument(std::string(api) + ": input " + std::to_string(k) + " is undefined");
    if (!in.requires_grad()) {
      throw std::invalid_argument(std::string(api) + ": input " + std::to_string(k) + " (shape " +
                                  shape_str(in.shape()) +
                                  ") does not require grad; call set_requires_grad() on it before the "
                                  "forward pass");
    }
    targets.push_back(gradient_edge(in));
  }
  Engine engine(Engine::Mode::Grad, options.retain_graph, options.create_graph);
  uint64_t min_seq = UINT64_MAX;
  for (const auto& t : targets) min_seq = std::min(min_seq, t->sequence_nr());
  engine.build(roots, min_seq);
  std::vector<Node*> target_ptrs;
  for (auto& t : targets) target_ptrs.push_back(t.get());
  engine.mark_needed(target_ptrs);
  for (size_t k = 0; k < targets.size(); ++k) {
    if (!Engine::in_graph(targets[k].get())) continue;
    engine.capture(targets[k].get(), k);
    if (buffers) engine.prefill(targets[k].get(), (*buffers)[k]);
  }
  for (size_t k = 0; k < roots.size(); ++k) engine.seed(roots[k], seed_values[k]);
  result.assign(inputs.size(), Tensor());
  engine.run(&result);
  for (size_t k = 0; k < inputs.size(); ++k) {
    const bool reached = result[k].defined() && Engine::in_graph(targets[k].get());
    if (!result[k].defined() || !reached) {
      if (!options.allow_unused) {
        throw std::invalid_argument(std::string(api) + ": input " + std::to_string(k) + " (shape " +
                                    shape_str(inputs[k].shape()) +
                                    ") is not used to compute the outputs; pass allow_unused=true to get a "
                                    "zero gradient for it");
      }
      if (!buffers) result[k] = Tensor::zeros(inputs[k].shape());
    }
  }
}
}  // namespace

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const GradOptions& options) {
  std::vector<Tensor> result;
  run_grad(outputs, inputs, nullptr, options, result);
  for (Tensor& r : result) {
    if (!r.is_contiguous() || r.impl_ptr().use_count() > 1 || r.storage().use_count() > 1) r = r.clone();
  }
  return result;
}

void grad_into(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
               const std::vector<Tensor>& buffers, const GradOptions& options) {
  if (buffers.size() != inputs.size()) {
    throw std::invalid_argument("grad_into: got " + std::to_string(buffers.size()) + " buffers for " +
                                std::to_string(inputs.size()) + " inputs");
  }
  if (options.create_graph) {
    throw std::invalid_argument(
        "grad_into: create_graph is not supported (it adds into buffers in place); use grad() with "
        "create_graph=true");
  }
  for (size_t k = 0; k < inputs.size(); ++k) {
    check_same_shape(buffers[k].shape(), inputs[k].shape(), "grad_into", ("buffer " + std::to_string(k)).c_str());
    if (!inputs[k].is_leaf()) {
      throw std::invalid_argument("grad_into: input " + std::to_string(k) + " is not a leaf (produced by '" +
                                  inputs[k].grad_fn()->name() + "'); use grad() for intermediate tensors");
    }
    if (!buffers[k].is_contiguous()) {
      throw std::invalid_argument("grad_into: buffer " + std::to_string(k) + " must be contiguous");
    }
  }
  // Prefilled buffers are owned by the engine for the sweep, so every contribution is added into
  // them in place.
  std::vector<Tensor> result;
  run_grad(outputs, inputs, &buffers, options, result);
}

}  // namespace scalpel

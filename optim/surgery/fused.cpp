// Fused O(P) passes (EMA updates + Gram matrix + linear combination) and the EMA bank.
#include "optim/surgery/fused.h"

#include <omp.h>

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/random.h"

namespace scalpel {
namespace surgery {

namespace {

// e [len], src [len] -> e = (1 - rho) e + rho src; rho = 1 copies src bit for bit.
void ema_block(float* e, const float* src, int64_t len, float rho) {
  if (rho == 1.0f) {
    std::memcpy(e, src, static_cast<size_t>(len) * sizeof(float));
    return;
  }
  const float omr = 1.0f - rho;
  for (int64_t i = 0; i < len; ++i) e[i] = omr * e[i] + rho * src[i];
}

// x [len], y [len] -> lanes[8] += x·y, element i into lane i mod 8 (fixed order, vectorisable).
void dot_lanes(const float* x, const float* y, int64_t len, double* lanes) {
  double l[8];
  for (int k = 0; k < 8; ++k) l[k] = lanes[k];
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    for (int k = 0; k < 8; ++k) l[k] += static_cast<double>(x[i + k]) * static_cast<double>(y[i + k]);
  }
  for (; i < len; ++i) l[i & 7] += static_cast<double>(x[i]) * static_cast<double>(y[i]);
  for (int k = 0; k < 8; ++k) lanes[k] = l[k];
}

// v[0..M) at offset i0, [len] -> lanes[pair][8] += v_a·v_b for the pairs (a, b <= a) in order.
// The same per-lane summation order as dot_lanes (so both give the same bits), but all pairs in one
// sweep: each element is loaded once and the M(M+1)/2 accumulators are independent FMA chains.
template <int M>
void gram_block_fixed(const float* const* v, int64_t i0, int64_t len, double* lanes) {
  constexpr int kPairs = M * (M + 1) / 2;
  double l[kPairs][8];
  for (int p = 0; p < kPairs; ++p) {
    for (int k = 0; k < 8; ++k) l[p][k] = lanes[p * 8 + k];
  }
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    double x[M][8];
    for (int a = 0; a < M; ++a) {
      for (int k = 0; k < 8; ++k) x[a][k] = static_cast<double>(v[a][i0 + i + k]);
    }
    int p = 0;
    for (int a = 0; a < M; ++a) {
      for (int b = 0; b <= a; ++b, ++p) {
        for (int k = 0; k < 8; ++k) l[p][k] += x[a][k] * x[b][k];
      }
    }
  }
  for (; i < len; ++i) {
    int p = 0;
    for (int a = 0; a < M; ++a) {
      for (int b = 0; b <= a; ++b, ++p) {
        l[p][i & 7] += static_cast<double>(v[a][i0 + i]) * static_cast<double>(v[b][i0 + i]);
      }
    }
  }
  for (int p = 0; p < kPairs; ++p) {
    for (int k = 0; k < 8; ++k) lanes[p * 8 + k] = l[p][k];
  }
}

void gram_block(size_t M, const float* const* v, int64_t i0, int64_t len, double* lanes) {
  switch (M) {
    case 1:
      return gram_block_fixed<1>(v, i0, len, lanes);
    case 2:
      return gram_block_fixed<2>(v, i0, len, lanes);
    case 3:
      return gram_block_fixed<3>(v, i0, len, lanes);
    case 4:
      return gram_block_fixed<4>(v, i0, len, lanes);
    case 5:
      return gram_block_fixed<5>(v, i0, len, lanes);
    default:
      break;
  }
  size_t pair = 0;
  for (size_t a = 0; a < M; ++a) {
    for (size_t b = 0; b <= a; ++b, ++pair) dot_lanes(v[a] + i0, v[b] + i0, len, lanes + pair * 8);
  }
}

// v[0..T) at offset i0, c[T] -> out[len] = Σ_k c_k v_k, accumulated in double in order k = 0..T-1.
template <int T>
void combine_block_fixed(const float* const* v, const double* c, int64_t i0, int64_t len, float* out) {
  for (int64_t i = 0; i < len; ++i) {
    double s = 0.0;
    for (int k = 0; k < T; ++k) s += c[k] * static_cast<double>(v[k][i0 + i]);
    out[i] = static_cast<float>(s);
  }
}

void combine_block(size_t T, const float* const* v, const double* c, int64_t i0, int64_t len, float* out, double* acc) {
  switch (T) {
    case 0:
      std::fill(out, out + len, 0.0f);
      return;
    case 1:
      return combine_block_fixed<1>(v, c, i0, len, out);
    case 2:
      return combine_block_fixed<2>(v, c, i0, len, out);
    case 3:
      return combine_block_fixed<3>(v, c, i0, len, out);
    case 4:
      return combine_block_fixed<4>(v, c, i0, len, out);
    default:
      break;
  }
  std::fill(acc, acc + len, 0.0);
  for (size_t k = 0; k < T; ++k) {
    const float* x = v[k] + i0;
    for (int64_t i = 0; i < len; ++i) acc[i] += c[k] * static_cast<double>(x[i]);
  }
  for (int64_t i = 0; i < len; ++i) out[i] = static_cast<float>(acc[i]);
}

}  // namespace

double Gram::dot(const Coef& a, const Coef& b) const {
  double s = 0.0;
  for (size_t i = 0; i < m_; ++i) {
    if (a[i] == 0.0) continue;
    double row = 0.0;
    for (size_t j = 0; j < m_; ++j) row += data_[i * m_ + j] * b[j];
    s += a[i] * row;
  }
  return s;
}

double Gram::dot_unit(const Coef& a, size_t i) const {
  double s = 0.0;
  for (size_t k = 0; k < m_; ++k) s += a[k] * data_[k * m_ + i];
  return s;
}

Coef unit_coef(size_t m, size_t i) {
  Coef c(m, 0.0);
  c[i] = 1.0;
  return c;
}

void axpy(Coef& y, double alpha, const Coef& x) {
  for (size_t i = 0; i < y.size(); ++i) y[i] += alpha * x[i];
}

uint64_t run_fused_pass(int64_t n, const FusedPass& pass) {
  const size_t M = pass.vectors.size();
  for (size_t k = 0; k < M; ++k) {
    if (!pass.vectors[k] && n > 0) throw std::logic_error("run_fused_pass: vector " + std::to_string(k) + " is null");
  }
  for (const auto* list : {&pass.pre, &pass.post}) {
    for (const EmaUpdate& u : *list) {
      if ((!u.ema || !u.src) && n > 0) throw std::logic_error("run_fused_pass: an EMA update has a null buffer");
    }
  }
  if (pass.out && pass.coef.size() != M) {
    throw std::logic_error("run_fused_pass: " + std::to_string(pass.coef.size()) + " coefficients for " +
                           std::to_string(M) + " vectors");
  }
  if (pass.gram) pass.gram->reset(M);
  if (n <= 0) return 0;

  // Traffic: each distinct buffer read or written once per pass.
  std::set<const void*> reads, writes;
  for (const EmaUpdate& u : pass.pre) reads.insert(u.ema), reads.insert(u.src), writes.insert(u.ema);
  for (const EmaUpdate& u : pass.post) reads.insert(u.ema), reads.insert(u.src), writes.insert(u.ema);
  for (size_t k = 0; k < M; ++k) {
    if (pass.gram || (pass.out && pass.coef[k] != 0.0)) reads.insert(pass.vectors[k]);
  }
  if (pass.out) writes.insert(pass.out);
  const uint64_t bytes = static_cast<uint64_t>(reads.size() + writes.size()) * static_cast<uint64_t>(n) * sizeof(float);

  const int64_t blocks = (n + kFusedBlock - 1) / kFusedBlock;
  const int64_t chunks = std::min<int64_t>(kFusedChunks, blocks);
  const size_t npairs = pass.gram ? M * (M + 1) / 2 : 0;
  std::vector<double> lanes(static_cast<size_t>(chunks) * npairs * 8, 0.0);

  // The combination's terms: the vectors with a non-zero coefficient (a zero term is absent, so
  // λ = 0 gives exactly g0 even next to a non-finite auxiliary gradient).
  std::vector<const float*> terms;
  std::vector<double> term_coef;
  if (pass.out) {
    for (size_t k = 0; k < M; ++k) {
      if (pass.coef[k] != 0.0) {
        terms.push_back(pass.vectors[k]);
        term_coef.push_back(pass.coef[k]);
      }
    }
  }

  auto run_chunk = [&](int64_t c) {
    double acc[kFusedBlock];
    double* my_lanes = lanes.data() + static_cast<size_t>(c) * npairs * 8;
    const int64_t b0 = blocks * c / chunks, b1 = blocks * (c + 1) / chunks;
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t i0 = blk * kFusedBlock;
      const int64_t len = std::min(kFusedBlock, n - i0);
      for (const EmaUpdate& u : pass.pre) ema_block(u.ema + i0, u.src + i0, len, u.rho);
      if (pass.gram) gram_block(M, pass.vectors.data(), i0, len, my_lanes);
      if (pass.out) combine_block(terms.size(), terms.data(), term_coef.data(), i0, len, pass.out + i0, acc);
      for (const EmaUpdate& u : pass.post) ema_block(u.ema + i0, u.src + i0, len, u.rho);
    }
  };

  const int threads = omp_in_parallel() ? 1 : static_cast<int>(std::min<int64_t>(omp_get_max_threads(), chunks));
  if (threads <= 1 || n < 4 * kFusedBlock) {
    for (int64_t c = 0; c < chunks; ++c) run_chunk(c);
  } else {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t c = 0; c < chunks; ++c) run_chunk(c);
  }

  if (pass.gram) {
    Gram& G = *pass.gram;
    size_t pair = 0;
    for (size_t a = 0; a < M; ++a) {
      for (size_t b = 0; b <= a; ++b, ++pair) {
        double s = 0.0;
        for (int64_t c = 0; c < chunks; ++c) {
          const double* l = lanes.data() + (static_cast<size_t>(c) * npairs + pair) * 8;
          s += ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
        }
        G.at(a, b) = s;
        G.at(b, a) = s;
      }
    }
  }
  return bytes;
}

void fill_common_diagnostics(const Gram& G, int K, int ema_index, const Coef& coef, SurgeryDiagnostics& diag) {
  auto norm = [&](int i) { return std::sqrt(std::max(G(static_cast<size_t>(i), static_cast<size_t>(i)), 0.0)); };
  auto cosine = [](double dot, double na, double nb) {
    if (std::isnan(dot) || std::isnan(na) || std::isnan(nb)) return SurgeryDiagnostics::kNaN;
    if (!(na > 0.0) || !(nb > 0.0)) return 0.0;  // a zero vector: report no alignment
    return std::clamp(dot / (na * nb), -1.0, 1.0);
  };
  diag.g0_norm = norm(0);
  diag.gk_norm.assign(static_cast<size_t>(K), 0.0);
  diag.cos_g0_gk.assign(static_cast<size_t>(K), 0.0);
  for (int k = 1; k <= K; ++k) {
    diag.gk_norm[static_cast<size_t>(k - 1)] = norm(k);
    diag.cos_g0_gk[static_cast<size_t>(k - 1)] = cosine(G(0, static_cast<size_t>(k)), diag.g0_norm, norm(k));
  }
  if (ema_index >= 0) {
    diag.ema_norm = norm(ema_index);
    diag.cos_e_g0 = cosine(G(static_cast<size_t>(ema_index), 0), diag.ema_norm, diag.g0_norm);
  }
  diag.d_norm = std::sqrt(std::max(G.dot(coef, coef), 0.0));
  diag.cos_d_g0 = cosine(G.dot_unit(coef, 0), diag.d_norm, diag.g0_norm);
  // Every pair of task gradients, and the conditioning of their Gram matrix (T×T algebra only; no
  // allocation once the vectors have their size, the eigen solver works on fixed-capacity storage).
  const int T = K + 1;
  diag.cos_gi_gj.clear();
  diag.gms.clear();
  for (int i = 0; i < T; ++i) {
    for (int j = i + 1; j < T; ++j) {
      const double ni = norm(i), nj = norm(j);
      if (i > 0) diag.cos_gi_gj.push_back(cosine(G(static_cast<size_t>(i), static_cast<size_t>(j)), ni, nj));
      const double den = ni * ni + nj * nj;
      diag.gms.push_back(den > 0.0 ? 2.0 * ni * nj / den : 0.0);
    }
  }
  diag.gram_rcond = SurgeryDiagnostics::kNaN;
  constexpr int kMaxEigen = 16;
  if (T >= 2 && T <= kMaxEigen) {
    using Small = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxEigen, kMaxEigen>;
    Small m(T, T);
    bool finite = true;
    for (int a = 0; a < T; ++a) {
      for (int b = 0; b < T; ++b) {
        m(a, b) = G(static_cast<size_t>(a), static_cast<size_t>(b));
        finite = finite && std::isfinite(m(a, b));
      }
    }
    if (finite) {
      Eigen::SelfAdjointEigenSolver<Small> es(m, Eigen::EigenvaluesOnly);
      const double lmax = es.eigenvalues().maxCoeff();
      if (lmax > 0.0) diag.gram_rcond = std::clamp(es.eigenvalues().minCoeff() / lmax, 0.0, 1.0);
    }
  }
}

// ---- EmaBank ------------------------------------------------------------------------------------

EmaBank::EmaBank(std::string owner, double rho, EmaOrder order, EmaInit init, uint64_t seed)
    : owner_(std::move(owner)), rho_(rho), order_(order), init_(init), seed_(seed) {
  if (!(rho >= 0.0 && rho <= 1.0)) {
    std::ostringstream os;
    os << owner_ << ": option rho must be in [0, 1] (the weight of the new gradient in the EMA), got " << rho;
    throw std::invalid_argument(os.str());
  }
  aliased_ = rho == 1.0 && order == EmaOrder::UpdateThenProject;
}

void EmaBank::prepare(int count, int64_t n) {
  if (count_ < 0) {
    count_ = count;
    size_ = n;
    buffers_.clear();
    if (!aliased_) {
      for (int j = 0; j < count; ++j) buffers_.emplace_back(n);  // zeros
      if (init_ == EmaInit::Random) {
        Generator gen(seed_);
        for (GradVector& b : buffers_) {
          float* p = b.data();
          for (int64_t i = 0; i < n; ++i) p[i] = gen.normal();
        }
      }
    }
    initialized_ = init_ != EmaInit::FirstGrad;
    return;
  }
  if (count != count_) {
    throw std::invalid_argument(owner_ + ": this step needs " + std::to_string(count) +
                                " EMA(s) but the surgeon's state holds " + std::to_string(count_) +
                                "; the number of auxiliary losses K must stay fixed (use a new surgeon, or load a "
                                "state saved with the same K)");
  }
  if (n != size_) {
    throw std::invalid_argument(owner_ + ": the gradients have " + std::to_string(n) +
                                " elements but the EMA state has " + std::to_string(size_) +
                                " (from earlier steps or a loaded state)");
  }
}

const float* EmaBank::ema(int j, const std::vector<const float*>& grads) const {
  if (j < 0 || j >= count_) throw std::logic_error(owner_ + ": EMA index " + std::to_string(j) + " out of range");
  return aliased_ ? grads[static_cast<size_t>(j)] : buffers_[static_cast<size_t>(j)].data();
}

void EmaBank::updates(const std::vector<const float*>& grads, std::vector<EmaUpdate>& pre,
                      std::vector<EmaUpdate>& post) {
  pre.clear();
  post.clear();
  if (aliased_) return;
  const bool first = init_ == EmaInit::FirstGrad && !initialized_;
  const float rho = static_cast<float>(rho_);
  for (int j = 0; j < count_; ++j) {
    float* e = buffers_[static_cast<size_t>(j)].data();
    const float* g = grads[static_cast<size_t>(j)];
    if (order_ == EmaOrder::UpdateThenProject) {
      pre.push_back({e, g, first ? 1.0f : rho});
    } else {
      if (first) pre.push_back({e, g, 1.0f});
      post.push_back({e, g, rho});
    }
  }
}

void EmaBank::save(StateDict& state) const {
  state.set_int("ema.count", count_);
  state.set_int("ema.size", size_);
  state.set_int("ema.initialized", initialized_ ? 1 : 0);
  state.set_int("ema.aliased", aliased_ ? 1 : 0);
  if (!aliased_) {
    for (size_t j = 0; j < buffers_.size(); ++j)
      state.set_tensor("ema." + std::to_string(j), buffers_[j].tensor().clone());
  }
}

void EmaBank::load(const StateDict& state) {
  const int64_t count = state.get_int("ema.count");
  const int64_t size = state.get_int("ema.size");
  const bool initialized = state.get_int("ema.initialized") != 0;
  if (count < -1 || count > (1 << 20) || (count >= 0 && size < 0)) {
    throw std::invalid_argument(owner_ + ".load_state_dict: 'ema.count' = " + std::to_string(count) +
                                " / 'ema.size' = " + std::to_string(size) + " are not a valid EMA state");
  }
  std::vector<GradVector> buffers;
  if (!aliased_ && count > 0) {
    for (int64_t j = 0; j < count; ++j) {
      const std::string key = "ema." + std::to_string(j);
      if (!state.has_tensor(key)) {
        throw std::invalid_argument(owner_ + ".load_state_dict: missing tensor '" + key +
                                    "' (a state saved with rho = 1 and update_then_project keeps no EMA buffers)");
      }
      const Tensor& t = state.tensor(key);
      if (t.numel() != size) {
        throw std::invalid_argument(owner_ + ".load_state_dict: '" + key + "' has " + std::to_string(t.numel()) +
                                    " elements, 'ema.size' says " + std::to_string(size));
      }
      GradVector b(size);
      const Tensor c = t.detach().contiguous();
      if (size) std::memcpy(b.data(), c.data(), static_cast<size_t>(size) * sizeof(float));
      buffers.push_back(std::move(b));
    }
  }
  count_ = static_cast<int>(count);
  size_ = count < 0 ? -1 : size;
  initialized_ = initialized;
  buffers_ = std::move(buffers);
  if (aliased_ || count_ < 0) buffers_.clear();
}

}  // namespace surgery
}  // namespace scalpel

#include "experiments/vision_common.h"

#include "core/dist.h"
#include "core/ops.h"
#include "data/loader.h"

#include <stdexcept>
#include <string>

namespace scalpel {
namespace experiments {

data::TransformPtr cifar_transform(bool augment) {
  if (augment) {
    return data::compose(
        {data::random_crop(4), data::random_horizontal_flip(), data::normalize(data::kCifarMean, data::kCifarStd)});
  }
  return data::normalize(data::kCifarMean, data::kCifarStd);
}

DeriveLabels parity_of_labels(size_t from) {
  return [from](data::Batch& b) {
    if (from >= b.labels.size()) {
      throw std::invalid_argument("parity_of_labels: the batch has " + std::to_string(b.labels.size()) +
                                  " label sets, expected set " + std::to_string(from));
    }
    std::vector<int64_t> parity(b.labels[from].data.size());
    for (size_t i = 0; i < parity.size(); ++i) parity[i] = b.labels[from].data[i] % 2;
    b.labels.emplace_back(std::move(parity), b.labels[from].shape);
  };
}

std::vector<Tensor> head_logits(nn::ResNet18& net, const Tensor& x, nn::RotoGrad* roto) {
  if (!roto) return net.forward(x);
  const std::vector<Tensor> zk = roto->forward(net.features(x));
  std::vector<Tensor> logits;
  for (size_t k = 0; k < net.heads.size(); ++k) logits.push_back(net.heads[k]->forward(zk[k]));
  return logits;
}

std::vector<HeadMetrics> evaluate_heads(nn::ResNet18& net, const std::shared_ptr<const data::Dataset>& ds,
                                        int64_t limit, int64_t batch_size, const DeriveLabels& derive,
                                        nn::RotoGrad* roto) {
  NoGradGuard ng;
  const bool was_training = net.is_training();
  net.eval();
  if (roto) roto->eval();
  data::DataLoader loader(
      ds, data::DataLoaderOptions()
              .batch_size(batch_size)
              .shuffle(false)
              .transform(cifar_transform(false))
              .shard(dist::rank(), dist::world_size()));  // under mpirun each rank scores its part, summed below
  loader.start_epoch(0);
  const size_t heads = net.heads.size();
  std::vector<double> loss(heads, 0.0), correct(heads, 0.0);
  int64_t n = 0;
  data::Batch b;
  while ((limit <= 0 || n < limit) && loader.next(b)) {
    if (derive) derive(b);
    const std::vector<Tensor> logits = head_logits(net, b.input, roto);
    for (size_t k = 0; k < heads; ++k) {
      loss[k] += cross_entropy(logits[k], b.labels[k]).item() * static_cast<double>(b.size());
      const IndexTensor pred = argmax(logits[k], 1);
      for (int64_t i = 0; i < b.size(); ++i) correct[k] += pred.data[i] == b.labels[k].data[i] ? 1.0 : 0.0;
    }
    n += b.global_size;  // the limit counts rows of every rank
  }
  std::vector<double> sums(loss);  // sums over the ranks (the identity in a world of one)
  sums.insert(sums.end(), correct.begin(), correct.end());
  dist::allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
  for (size_t k = 0; k < heads; ++k) {
    loss[k] = sums[k];
    correct[k] = sums[heads + k];
  }
  net.train(was_training);
  if (roto) roto->train(was_training);
  std::vector<HeadMetrics> out(heads);
  for (size_t k = 0; k < heads; ++k) {
    out[k].loss = loss[k] / static_cast<double>(n);
    out[k].accuracy = correct[k] / static_cast<double>(n);
  }
  return out;
}

}  // namespace experiments
}  // namespace scalpel

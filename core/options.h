// SCALPEL_ARG: declares an option of an options struct with a chained setter and a getter, so that
// configuration reads like `nn::LinearOptions(784, 256).bias(false)` or
// `optim::SGDOptions(0.1).momentum(0.9).nesterov(true)`:
//
//   struct LinearOptions {
//     LinearOptions(int64_t in, int64_t out) : in_features_(in), out_features_(out) {}
//     SCALPEL_ARG(int64_t, in_features);
//     SCALPEL_ARG(int64_t, out_features);
//     SCALPEL_ARG(bool, bias) = true;     // default value
//   };
//
// The macro declares a private member `name_`, a setter `name(value)` returning *this, and a
// getter `name()`.
#pragma once

#define SCALPEL_ARG(T, name)                \
 public:                                    \
  auto& name(const T& value) {              \
    name##_ = value;                        \
    return *this;                           \
  }                                         \
  const T& name() const { return name##_; } \
                                            \
 private:                                   \
  T name##_

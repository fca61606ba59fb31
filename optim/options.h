// Chained-setter options for optim/: SCALPEL_ARG declares a private member `name_` with a setter
// `name(value)` that returns *this and a getter `name()`, so configurations read like
// `SGDOptions(0.1).momentum(0.9).nesterov(true)`.
//
// nn/module.h declares the same macro with the same definition; whichever header comes first wins,
// and the two are token-for-token identical, so including both is fine.
#pragma once

#ifndef SCALPEL_ARG
// Declares an option with a chained setter and a getter: SCALPEL_ARG(bool, bias) = true;
#define SCALPEL_ARG(T, name)                  \
 public:                                      \
  auto& name(const T& value) {                \
    name##_ = value;                          \
    return *this;                             \
  }                                           \
  const T& name() const { return name##_; }   \
                                              \
 private:                                     \
  T name##_
#endif

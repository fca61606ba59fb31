// Checks the norm-matched surgeon by hand: g0 = (3, 4) (norm 5), g1 = (0, 2) (norm 2), λ = 0.5:
// d = g0 + 0.5 · (5/2) · g1 = (3, 6.5). Exits 1 when it is off, or when the name (or one of
// Scalpel's own methods, registered from inside the installed archive) is not registered.
#include <cmath>
#include <cstdio>

#include "optim/surgery/surgeon.h"

using namespace scalpel;

int main() {
  bool listed = false, builtin = false;
  for (const std::string& n : surgery::surgeon_names()) {
    listed |= n == "norm-matched";
    builtin |= n == "bloop";
  }
  auto s = surgery::make_surgeon("nm", surgery::SurgeonOptions().lambda(0.5));
  GradVector g0(2), g1(2), d;
  g0.data()[0] = 3, g0.data()[1] = 4, g1.data()[0] = 0, g1.data()[1] = 2;
  s->combine({&g0, &g1}, {}, d);
  const bool ok = listed && builtin && s->name() == "norm-matched" && std::fabs(d.data()[0] - 3.0f) < 1e-6f &&
                  std::fabs(d.data()[1] - 6.5f) < 1e-6f;
  std::printf("norm-matched: d = (%g, %g), expected (3, 6.5); registered: %s, bloop registered: %s: %s\n", d.data()[0],
              d.data()[1], listed ? "yes" : "no", builtin ? "yes" : "no", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

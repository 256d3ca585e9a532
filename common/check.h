// DEJA_CHECK: crash loudly on a broken invariant (never on bad input, which
// gets an error status). Debian 12's Abseil predates absl/log.
#ifndef DEJA_COMMON_CHECK_H_
#define DEJA_COMMON_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#define DEJA_CHECK(cond, message)                                                      \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", __FILE__, __LINE__, #cond, \
                   std::string(message).c_str());                                      \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

#endif  // DEJA_COMMON_CHECK_H_

// A minimal self-registering test harness for the C++ core (no third-party dependency).
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace hkrt_test {

struct Case {
  const char* name;
  std::function<void()> fn;
};

inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

inline int& failures() {
  static int n = 0;
  return n;
}

struct Register {
  Register(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

inline int run_all() {
  int failed_cases = 0;
  for (const Case& c : registry()) {
    const int before = failures();
    try {
      c.fn();
    } catch (const std::exception& e) {
      std::printf("  exception: %s\n", e.what());
      ++failures();
    }
    const bool ok = failures() == before;
    std::printf("[%s] %s\n", ok ? "PASS" : "FAIL", c.name);
    failed_cases += ok ? 0 : 1;
  }
  std::printf("%zu passed, %d failed\n", registry().size() - failed_cases, failed_cases);
  return failed_cases == 0 ? 0 : 1;
}

template <typename A, typename B>
void check_eq(const A& a, const B& b, const char* ea, const char* eb, const char* file, int line) {
  if (!(a == b)) {
    std::ostringstream os;
    os << a << " != " << b;
    std::printf("  %s:%d: CHECK_EQ(%s, %s) failed: %s\n", file, line, ea, eb, os.str().c_str());
    ++failures();
  }
}

}  // namespace hkrt_test

#define HKRT_CAT2(a, b) a##b
#define HKRT_CAT(a, b) HKRT_CAT2(a, b)
#define TEST_CASE(name)                                                                 \
  static void HKRT_CAT(test_fn_, __LINE__)();                                           \
  static hkrt_test::Register HKRT_CAT(test_reg_, __LINE__)(name, HKRT_CAT(test_fn_, __LINE__)); \
  static void HKRT_CAT(test_fn_, __LINE__)()
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);   \
      ++hkrt_test::failures();                                                 \
    }                                                                          \
  } while (0)
#define CHECK_EQ(a, b) hkrt_test::check_eq((a), (b), #a, #b, __FILE__, __LINE__)
#define CHECK_NEAR(a, b, tol) CHECK(std::fabs((a) - (b)) <= (tol))
#define CHECK_THROWS(expr)            \
  do {                                \
    bool thrown_ = false;             \
    try {                             \
      (void)(expr);                   \
    } catch (const std::exception&) { \
      thrown_ = true;                 \
    }                                 \
    CHECK(thrown_ && #expr);          \
  } while (0)
#define TEST_MAIN() \
  int main() { return hkrt_test::run_all(); }

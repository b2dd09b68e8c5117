// What a minute boundary costs the engine: a whole market (5,500 symbols by default) pushes a
// spot every 3 s from 09:30:03; every 20th push starts a new minute, so every symbol completes
// its MIN bar (and MIN3/MIN5/MIN15... at their multiples).  Prints, per kind of cycle, the
// median time of ingest_columns + advance_to + the completed queue's handover (the best of
// `reps` runs of the same day, per cycle), per cycle and per symbol.
//
//   g++ -O2 -std=c++17 -Icpp benchmarks/cpp/bench_boundary.cpp build/dev/libhkrt_agent.a
//       build/dev/libhkrt_kdata.a -lpthread -o /tmp/bench_boundary  # then: /tmp/bench_boundary [symbols] [reps]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "kdata/engine.h"
#include "spot_agent/completed_queue.h"

using namespace hkrt;

namespace {
double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? static_cast<size_t>(std::atoi(argv[1])) : 5500;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 3;
  const int cycles = 600;  // 30 minutes of 3 s pushes
  std::vector<uint32_t> keys;
  for (size_t i = 0; i < n; ++i) {
    char code[16];
    std::snprintf(code, sizeof code, i < 2000 ? "SH%06zu" : "SZ%06zu", i < 2000 ? 600000 + i : i - 1999);
    keys.push_back(parse_symbol(code)->key());
  }
  std::vector<double> best(cycles, 1e18), best_advance(cycles, 1e18);
  std::vector<size_t> completed(cycles);
  for (int rep = 0; rep < reps; ++rep) {
    KDataEngine engine;  // all 13 periods
    engine.reserve(keys.data(), n);
    CompletedQueue queue;
    queue.set_collecting(true);
    queue.reserve(2 * n);
    std::vector<int64_t> datetime(n);
    std::vector<double> open(n, 10), high(n, 10), low(n, 10), close(n, 10), volume(n, 0), amount(n, 0);
    uint64_t seed = 1;
    auto uniform = [&] {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      return static_cast<double>(seed >> 11) / static_cast<double>(1ULL << 53);
    };
    const TimestampMs open_time = start_of_day(days_from_civil(2026, 11, 20)) + 9 * kMsPerHour + 30 * kMsPerMinute;
    for (int c = 0; c < cycles; ++c) {
      const TimestampMs t = open_time + (c + 1) * 3000;
      for (size_t i = 0; i < n; ++i) {
        close[i] *= 1 + (uniform() - 0.5) * 0.002;
        datetime[i] = t;
        high[i] = std::max(high[i], close[i]);
        low[i] = std::min(low[i], close[i]);
        const double traded = 100.0 * (1 + static_cast<int>(uniform() * 10));
        volume[i] += traded;
        amount[i] += traded * close[i];
      }
      SpotColumns columns;
      columns.n = n;
      columns.symbol_keys = keys.data();
      columns.datetime = datetime.data();
      columns.open = open.data();
      columns.high = high.data();
      columns.low = low.data();
      columns.close = close.data();
      columns.volume = volume.data();
      columns.amount = amount.data();
      const auto start = std::chrono::steady_clock::now();
      engine.ingest_columns(columns, queue.sink());
      const auto ingested = std::chrono::steady_clock::now();
      engine.advance_to(t, queue.sink());
      const auto advanced = std::chrono::steady_clock::now();
      completed[static_cast<size_t>(c)] = queue.take_reusing().size();
      const auto end = std::chrono::steady_clock::now();
      best[static_cast<size_t>(c)] =
          std::min(best[static_cast<size_t>(c)], std::chrono::duration<double, std::micro>(end - start).count());
      best_advance[static_cast<size_t>(c)] = std::min(
          best_advance[static_cast<size_t>(c)], std::chrono::duration<double, std::micro>(advanced - ingested).count());
    }
  }
  std::map<size_t, std::vector<double>> by_kind, advance_by_kind;  // bars completed per symbol -> times
  for (int c = 1; c < cycles; ++c) {
    const size_t kind = (completed[static_cast<size_t>(c)] + n / 2) / n;
    by_kind[kind].push_back(best[static_cast<size_t>(c)]);
    advance_by_kind[kind].push_back(best_advance[static_cast<size_t>(c)]);
  }
  std::printf("| cycle (%zu symbols, all 13 periods) | cycles | median us | ns a symbol | of it advance_to us |\n", n);
  std::printf("|---|---:|---:|---:|---:|\n");
  for (const auto& [kind, times] : by_kind) {
    const double us = median(times);
    std::printf("| %s%zu bar%s completed a symbol | %zu | %.0f | %.0f | %.0f |\n", kind ? "" : "inside a minute: ",
                kind, kind == 1 ? "" : "s", times.size(), us, us * 1000 / static_cast<double>(n),
                median(advance_by_kind[kind]));
  }
  return 0;
}

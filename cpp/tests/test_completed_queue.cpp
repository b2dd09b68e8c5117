#include "check.h"
#include "spot_agent/completed_queue.h"

using namespace hkrt;

namespace {
CompletedBar bar(uint32_t key) {
  CompletedBar b{};
  b.symbol_key = key;
  b.ktype = KType::MIN;
  return b;
}
}  // namespace

TEST_CASE("nothing is collected until collecting is on; take empties the queue in order") {
  CompletedQueue q;
  CHECK(q.sink() == nullptr);
  q.set_collecting(true);
  q.sink()->push_back(bar(1));
  q.sink()->push_back(bar(2));
  const CompletedBars taken = q.take();
  CHECK_EQ(taken.size(), size_t(2));
  CHECK_EQ(taken[0].symbol_key, 1u);
  CHECK_EQ(taken[1].symbol_key, 2u);
  CHECK_EQ(q.size(), size_t(0));
  CHECK(q.take().empty());
}

TEST_CASE("past the bound the oldest bars are dropped and counted when the next call reports") {
  CompletedQueue q(3);
  q.set_collecting(true);
  CompletedBars* sink = q.sink();
  for (uint32_t k = 0; k < 5; ++k) sink->push_back(bar(k));  // one call may pass the bound
  CHECK_EQ(q.size(), size_t(5));
  CHECK_EQ(q.dropped(), 0u);
  q.sink();  // the next call: the two oldest go
  CHECK_EQ(q.dropped(), 2u);
  const CompletedBars taken = q.take();
  CHECK_EQ(taken.size(), size_t(3));
  CHECK_EQ(taken.front().symbol_key, 2u);
  q.set_collecting(false);
  CHECK(q.sink() == nullptr);
}

TEST_MAIN()

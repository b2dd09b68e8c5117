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

TEST_CASE("take_reusing hands the bars over in order and the two buffers keep their capacity") {
  CompletedQueue q;
  q.set_collecting(true);
  q.reserve(100);
  for (uint32_t k = 0; k < 3; ++k) q.sink()->push_back(bar(k));
  const CompletedBars& first = q.take_reusing();
  CHECK_EQ(first.size(), size_t(3));
  CHECK_EQ(first[0].symbol_key, 0u);
  CHECK_EQ(first[2].symbol_key, 2u);
  CHECK_EQ(q.size(), size_t(0));
  const CompletedBar* handed = first.data();
  CHECK(first.capacity() >= size_t(100));
  q.sink()->push_back(bar(7));
  CHECK(q.sink()->capacity() >= size_t(100));  // collecting into the other reserved buffer
  const CompletedBars& second = q.take_reusing();
  CHECK_EQ(second.size(), size_t(1));
  CHECK_EQ(second[0].symbol_key, 7u);
  q.sink()->push_back(bar(8));  // collects into the buffer handed over first, now free again
  CHECK(q.sink()->data() == handed);
  CHECK_EQ(q.take().front().symbol_key, 8u);  // take() still works after take_reusing()
}

TEST_CASE("reserve keeps the bars waiting and never goes past the bound") {
  CompletedQueue q(10);
  q.set_collecting(true);
  q.sink()->push_back(bar(1));
  q.reserve(1000);
  CHECK_EQ(q.size(), size_t(1));
  CHECK(q.sink()->capacity() >= size_t(10));
  CHECK(q.sink()->capacity() < size_t(1000));
  CHECK_EQ(q.take_reusing().front().symbol_key, 1u);
}

TEST_MAIN()

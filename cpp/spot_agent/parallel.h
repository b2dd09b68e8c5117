// A fixed set of worker threads that runs one task per index and waits for all of them.
// Used to process the shards of one message at once; the caller thread takes task 0.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hkrt {

class ParallelFor {
 public:
  explicit ParallelFor(int width);
  ~ParallelFor();
  ParallelFor(const ParallelFor&) = delete;
  ParallelFor& operator=(const ParallelFor&) = delete;

  int width() const { return width_; }
  // Runs task(i) for i in [0, width) concurrently and returns when all are done.  The
  // first exception thrown by a task is rethrown here after every task has finished.
  void run(const std::function<void(int)>& task);

 private:
  void worker(int index);

  int width_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  const std::function<void(int)>* task_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
};

}  // namespace hkrt

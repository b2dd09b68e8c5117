// The bars of one symbol and one period, oldest first.
//
// The storage is shared with read-only views handed to Python (zero-copy numpy arrays).
// To keep every view memory-safe, growth never frees a buffer a view still holds: when
// the buffer must grow while shared, a new buffer is allocated and the old one lives on
// until its last view is gone.  Bars inside a view's range may still be updated in place;
// a view never sees bars added after it.
//
// The data pointer, size, capacity and the newest label are kept inline (not behind the
// shared pointer) so that appending a completed bar reads nothing from the buffer and
// writes only the bar's own cache line: at a minute boundary every symbol appends to
// several series at once.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "bar.h"

namespace hkrt {

class BarSeries {
 public:
  // A block of bars; shared by the series and its views.
  struct Buffer {
    std::unique_ptr<Bar[]> bars;
    size_t capacity = 0;
    const Bar* data() const { return bars.get(); }
  };

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const Bar* data() const { return data_; }
  // Bars are changed in place through back()/at() but never relabelled (last_label_ holds).
  Bar& back() { return data_[size_ - 1]; }
  const Bar& back() const { return data_[size_ - 1]; }
  const Bar& operator[](size_t i) const { return data_[i]; }
  Bar& at(size_t i) { return data_[i]; }

  void push_back(const Bar& bar) {
    if (size_ == capacity_) grow(size_ + 1);
    data_[size_++] = bar;
    last_label_ = bar.datetime;
  }

  // The bar labelled `datetime`, inserted (in label order) from `init` if absent.
  // *inserted tells which.  The common case, the newest bar, costs one comparison.
  Bar& find_or_insert(TimestampMs datetime, const Bar& init, bool* inserted) {
    if (size_ == 0 || last_label_ < datetime) {
      push_back(init);
      *inserted = true;
      return back();
    }
    if (last_label_ == datetime) {
      *inserted = false;
      return back();
    }
    Bar* it = std::lower_bound(data_, data_ + size_, datetime, [](const Bar& b, TimestampMs t) { return b.datetime < t; });
    if (it != data_ + size_ && it->datetime == datetime) {
      *inserted = false;
      return *it;
    }
    const size_t pos = static_cast<size_t>(it - data_);
    if (size_ == capacity_) grow(size_ + 1);
    std::memmove(data_ + pos + 1, data_ + pos, (size_ - pos) * sizeof(Bar));
    data_[pos] = init;
    ++size_;
    *inserted = true;
    return data_[pos];
  }

  void upsert(const Bar& bar) {
    bool inserted = false;
    find_or_insert(bar.datetime, bar, &inserted) = bar;
  }

  // Removes the bars [first, last).  A buffer a view still holds is left as it is (the
  // series moves to a copy), so a view never sees bars shift under it.
  void erase(size_t first, size_t last) {
    if (first >= last || last > size_) return;
    if (buffer_.use_count() > 1) reallocate(capacity_);
    std::memmove(data_ + first, data_ + last, (size_ - last) * sizeof(Bar));
    size_ -= last - first;
    last_label_ = size_ ? data_[size_ - 1].datetime : INT64_MIN;
  }

  void reserve(size_t n) {
    if (n > capacity_) grow(n);
  }

  // Shared ownership of the current buffer, for a view of its first size() bars.
  std::shared_ptr<const Buffer> share() const { return buffer_; }

  // Heap bytes held: the bar buffer by capacity, plus its control block.
  size_t capacity_bytes() const { return buffer_ ? capacity_ * sizeof(Bar) + sizeof(Buffer) + 2 * sizeof(void*) : 0; }

  std::vector<Bar> copy() const { return std::vector<Bar>(data_, data_ + size_); }

 private:
  void grow(size_t n) { reallocate(std::max({n, capacity_ * 2, size_t{8}})); }

  void reallocate(size_t target) {
    std::unique_ptr<Bar[]> bars(new Bar[target]);
    if (size_) std::memcpy(bars.get(), data_, size_ * sizeof(Bar));
    if (!buffer_ || buffer_.use_count() > 1) buffer_ = std::make_shared<Buffer>();  // a view keeps the old one
    buffer_->bars = std::move(bars);
    buffer_->capacity = target;
    data_ = buffer_->bars.get();
    capacity_ = target;
  }

  std::shared_ptr<Buffer> buffer_;
  Bar* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  TimestampMs last_label_ = INT64_MIN;  // data_[size_ - 1].datetime
};

}  // namespace hkrt

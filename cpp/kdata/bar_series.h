// The bars of one symbol and one period, oldest first.
//
// The storage is shared with read-only views handed to Python (zero-copy numpy arrays).
// To keep every view memory-safe, growth never frees a buffer a view still holds: when
// the buffer must grow while shared, a new buffer is allocated and the old one lives on
// until its last view is gone.  Bars inside a view's range may still be updated in place
// (the bar being formed changes with every spot); a view never sees bars added after it.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include "bar.h"

namespace hkrt {

class BarSeries {
 public:
  using Buffer = std::vector<Bar>;

  size_t size() const { return buffer_ ? buffer_->size() : 0; }
  bool empty() const { return size() == 0; }
  const Bar* data() const { return buffer_ ? buffer_->data() : nullptr; }
  Bar& back() { return buffer_->back(); }
  const Bar& back() const { return buffer_->back(); }
  const Bar& operator[](size_t i) const { return (*buffer_)[i]; }
  Bar& at(size_t i) { return (*buffer_)[i]; }

  void push_back(const Bar& bar) {
    reserve(size() + 1);
    buffer_->push_back(bar);
  }

  // The bar labelled `datetime`, inserted (in label order) from `init` if absent.
  // *inserted tells which.  The common case, the newest bar, costs one comparison.
  Bar& find_or_insert(TimestampMs datetime, const Bar& init, bool* inserted) {
    if (empty() || back().datetime < datetime) {
      push_back(init);
      *inserted = true;
      return back();
    }
    if (back().datetime == datetime) {
      *inserted = false;
      return back();
    }
    auto it = std::lower_bound(buffer_->begin(), buffer_->end(), datetime,
                               [](const Bar& b, TimestampMs t) { return b.datetime < t; });
    if (it != buffer_->end() && it->datetime == datetime) {
      *inserted = false;
      return *it;
    }
    const size_t pos = static_cast<size_t>(it - buffer_->begin());
    reserve(size() + 1);
    *inserted = true;
    return *buffer_->insert(buffer_->begin() + static_cast<std::ptrdiff_t>(pos), init);
  }

  void upsert(const Bar& bar) {
    bool inserted = false;
    find_or_insert(bar.datetime, bar, &inserted) = bar;
  }

  void reserve(size_t n) {
    if (!buffer_) {
      buffer_ = std::make_shared<Buffer>();
    }
    if (buffer_->capacity() >= n) return;
    const size_t target = std::max(n, buffer_->capacity() * 2);
    if (buffer_.use_count() > 1) {  // a view holds the old buffer: leave it intact
      auto grown = std::make_shared<Buffer>();
      grown->reserve(target);
      grown->assign(buffer_->begin(), buffer_->end());
      buffer_ = std::move(grown);
    } else {
      buffer_->reserve(target);
    }
  }

  // Shared ownership of the current buffer, for a view of its first size() bars.
  std::shared_ptr<const Buffer> share() const { return buffer_; }

  // Heap bytes held: the bar buffer by capacity, plus the vector and its control block.
  size_t capacity_bytes() const {
    return buffer_ ? buffer_->capacity() * sizeof(Bar) + sizeof(Buffer) + 2 * sizeof(void*) : 0;
  }

  std::vector<Bar> copy() const { return buffer_ ? *buffer_ : std::vector<Bar>(); }

 private:
  std::shared_ptr<Buffer> buffer_;
};

}  // namespace hkrt

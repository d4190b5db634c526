// Ordered prefetching: worker threads load items 0..count-1 ahead of one consumer that takes them
// in index order (a batch run decodes and preprocesses images while the model runs on the
// consumer's thread).
//
// Memory is bounded: at most `capacity` items are loading or loaded but not yet taken (plus the
// one the consumer holds), however many items there are. A worker starts item i only once the
// consumer has taken item i - capacity. An exception thrown by the loader for an item is rethrown
// by next() when that item's turn comes; the following call goes on with the next item.
// Destroying the prefetcher early stops the workers after the items they are loading.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "clipxai/error.h"

namespace clipxai {

template <typename T>
class OrderedPrefetcher {
 public:
  using Loader = std::function<T(size_t index)>;

  // Throws Error(Internal) unless workers >= 1 and capacity >= 1.
  OrderedPrefetcher(size_t count, Loader load, int workers, size_t capacity)
      : count_(count), load_(std::move(load)), slots_(capacity) {
    if (workers < 1 || capacity < 1) {
      throw Error(ErrorCategory::Internal, "OrderedPrefetcher needs a worker and a slot");
    }
    try {
      for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
    } catch (...) {
      stop();
      throw;
    }
  }

  OrderedPrefetcher(const OrderedPrefetcher&) = delete;
  OrderedPrefetcher& operator=(const OrderedPrefetcher&) = delete;

  ~OrderedPrefetcher() { stop(); }

  // The next item in index order, waiting until it is loaded; nullopt once all were taken.
  std::optional<T> next() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (next_take_ >= count_) return std::nullopt;
    Slot& slot = slots_[next_take_ % slots_.size()];
    item_ready_.wait(lock, [&] { return slot.ready; });
    std::optional<T> value = std::move(slot.value);
    const std::exception_ptr failure = slot.failure;
    slot = Slot{};
    ++next_take_;
    lock.unlock();
    work_available_.notify_all();
    if (failure) std::rethrow_exception(failure);
    return value;
  }

 private:
  struct Slot {
    bool ready = false;
    std::optional<T> value;
    std::exception_ptr failure;
  };

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    work_available_.notify_all();
    for (std::thread& worker : workers_) worker.join();
  }

  void work() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      work_available_.wait(lock, [&] {
        return stopping_ || next_claim_ >= count_ || next_claim_ < next_take_ + slots_.size();
      });
      if (stopping_ || next_claim_ >= count_) return;
      const size_t index = next_claim_++;
      lock.unlock();
      Slot loaded;
      try {
        loaded.value.emplace(load_(index));
      } catch (...) {
        loaded.failure = std::current_exception();
      }
      loaded.ready = true;
      lock.lock();
      slots_[index % slots_.size()] = std::move(loaded);
      item_ready_.notify_all();
    }
  }

  const size_t count_;
  const Loader load_;
  std::mutex mutex_;
  std::condition_variable work_available_;
  std::condition_variable item_ready_;
  std::vector<Slot> slots_;
  size_t next_claim_ = 0;  // the next index a worker starts
  size_t next_take_ = 0;   // the next index the consumer takes
  bool stopping_ = false;
  std::vector<std::thread> workers_;  // last: started once everything above is initialised
};

}  // namespace clipxai

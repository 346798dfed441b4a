// The process's loop threads; see thread_pool.hpp for why they exist.
//
// A loop is published in three steps, so that a worker never reads a half-written loop: the
// caller makes `generation` odd (closed), waits until no worker still holds the previous loop
// (each worker announces the generation it works on in its `holds` slot before reading the
// loop, then checks that the generation did not move), writes the loop, and makes `generation`
// even again (open). Both sides use sequentially consistent accesses, so either the worker sees
// the closed generation, or the caller sees the worker's announcement and waits for it.
#include "lib/ops/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SLM_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define SLM_CPU_RELAX() asm volatile("yield")
#else
#define SLM_CPU_RELAX() ((void)0)
#endif

namespace slm::ops {
namespace {

// How long an idle worker spins before it sleeps: longer than the gap between two loops of a
// forward pass, shorter than anything a person would notice as a busy core.
constexpr auto kSpinTime = std::chrono::microseconds(300);

// A loop whose caller, done with its own chunks, still waits this long for a chunk another thread
// claimed, and longer than kStallChunks of its own chunks took, stalled: a worker lost its core (a
// quiet machine finishes the last chunks within about one chunk's time). Two stalls within
// kStallWindow mean a busy process shares the cores, not a passing hiccup; then the next loops
// run on the caller alone for a while, since a 2-thread loop that waits a scheduler time slice
// (milliseconds) for a descheduled worker is slower than one thread, which the kernel gives a core
// of its own. Each time alone doubles the next, from kSoloFirst up to kSoloLongest, until the
// threads have run kSoloForgetAfter without stalling.
constexpr auto kStallWait = std::chrono::microseconds(400);
constexpr int kStallChunks = 4;
constexpr auto kStallWindow = std::chrono::milliseconds(50);
constexpr auto kSoloFirst = std::chrono::milliseconds(10);
constexpr auto kSoloLongest = std::chrono::milliseconds(640);
constexpr auto kSoloForgetAfter = std::chrono::seconds(2);

std::atomic<bool> stall_fallback{true};

// Workers hold only open (even) generations, so an odd value can mean "none", and generations
// may wrap around.
constexpr uint32_t kHoldsNone = 1;

struct alignas(64) WorkerSlot {
  std::atomic<uint32_t> holds{kHoldsNone};  // the generation this worker is inside
};

struct Loop {
  LoopBody body;
  int64_t n_items = 0, chunk = 1, n_chunks = 0;
  int n_workers = 0;  // workers 1 .. n_workers take part
};

class ThreadPool {
 public:
  ~ThreadPool() {
    {
      std::lock_guard lock(busy_);
      stopping_.store(true);
      generation_.fetch_add(2);
    }
    wake_sleepers();
    for (std::thread& t : threads_) t.join();
  }

  // False when the pool is taken (by another thread's loop, or by this thread's own), or when
  // recent loops stalled on a descheduled worker (see kStallWait).
  bool run(int64_t n_items, int64_t chunk, int n_threads, LoopBody body) {
    if (inside_loop_) return false;
    const int64_t started = now_ns();
    if (stall_fallback.load(std::memory_order_relaxed) && started < solo_until_ns_.load(std::memory_order_relaxed))
      return false;
    std::unique_lock lock(busy_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    grow(n_threads - 1);

    // Close the previous generation and wait for the workers still reading it.
    const uint32_t closed = generation_.fetch_add(1) + 1;
    for (int i = 0; i < int(threads_.size()); ++i)
      for (int64_t spins = 1; slots_[size_t(i)]->holds.load() == closed - 1; ++spins)
        if (spins % 1024 == 0) std::this_thread::yield(); else SLM_CPU_RELAX();
    loop_.body = body;
    loop_.n_items = n_items;
    loop_.chunk = chunk;
    loop_.n_chunks = (n_items + chunk - 1) / chunk;
    loop_.n_workers = n_threads - 1;
    next_chunk_.store(0);
    done_chunks_.store(0);
    generation_.store(closed + 1);
    if (sleepers_.load() > 0) wake_sleepers();

    const int64_t working = now_ns();
    inside_loop_ = true;
    const int64_t mine = work(0);
    inside_loop_ = false;
    const int64_t worked = now_ns();
    // Wait for the chunks others claimed; yield now and then, in case one of them shares this core.
    int64_t spins = 0;
    while (done_chunks_.load(std::memory_order_acquire) + mine < loop_.n_chunks)
      if (++spins % 1024 == 0) std::this_thread::yield(); else SLM_CPU_RELAX();
    note_wait(now_ns() - worked, mine > 0 ? (worked - working) / mine : 0);
    return true;
  }

 private:
  // Claims and runs chunks until none are left; returns how many this thread ran.
  int64_t work(int worker) {
    int64_t ran = 0;
    for (int64_t c = next_chunk_.fetch_add(1); c < loop_.n_chunks; c = next_chunk_.fetch_add(1)) {
      const int64_t begin = c * loop_.chunk;
      loop_.body.run(loop_.body.context, begin, std::min(loop_.n_items, begin + loop_.chunk), worker);
      ++ran;
    }
    return ran;
  }

  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  static constexpr int64_t ns(std::chrono::nanoseconds d) { return d.count(); }

  // Called with busy_ held, after each pooled loop.
  void note_wait(int64_t waited_ns, int64_t own_chunk_ns) {
    const int64_t now = now_ns();
    if (own_chunk_ns == 0 || waited_ns <= std::max<int64_t>(ns(kStallWait), kStallChunks * own_chunk_ns)) {
      if (now - std::max(last_stall_ns_, solo_until_ns_.load(std::memory_order_relaxed)) > ns(kSoloForgetAfter))
        solo_ns_ = ns(kSoloFirst);
      return;
    }
    if (now - last_stall_ns_ < ns(kStallWindow)) {
      solo_until_ns_.store(now + solo_ns_, std::memory_order_relaxed);
      solo_ns_ = std::min(2 * solo_ns_, ns(kSoloLongest));
    }
    last_stall_ns_ = now;
  }

  void grow(int n_workers) {
    while (int(threads_.size()) < n_workers) {
      const int index = int(threads_.size());
      slots_.push_back(std::make_unique<WorkerSlot>());
      // The generation is read here, not by the new thread: one that starts late must still see
      // every change after this one, the destructor's included.
      threads_.emplace_back([this, index, slot = slots_.back().get(), seen = generation_.load()] {
        worker_main(index, *slot, seen);
      });
    }
  }

  void worker_main(int index, WorkerSlot& slot, uint32_t seen) {
    inside_loop_ = true;  // a body's own parallel_for runs inline
    while (true) {
      const uint32_t generation = wait_for_change(seen);
      if (stopping_.load()) return;
      seen = generation;
      if (generation % 2 == 1) continue;  // closed: being written
      slot.holds.store(generation);
      if (generation_.load() == generation && index + 1 <= loop_.n_workers) {
        const int64_t ran = work(index + 1);
        if (ran > 0) done_chunks_.fetch_add(ran, std::memory_order_release);
      }
      slot.holds.store(kHoldsNone);
    }
  }

  uint32_t wait_for_change(uint32_t seen) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
    for (int64_t spins = 0;; ++spins) {
      const uint32_t generation = generation_.load();
      if (generation != seen) return generation;
      if (spins % 256 == 255 && std::chrono::steady_clock::now() > spin_until) break;
      SLM_CPU_RELAX();
    }
    // Announced before the last look at the generation: a caller that changes it after that
    // look sees the sleeper and wakes it (both sequentially consistent).
    sleepers_.fetch_add(1);
    {
      std::unique_lock lock(sleep_mutex_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
    }
    sleepers_.fetch_sub(1);
    return generation_.load();
  }

  void wake_sleepers() {
    // Taking the mutex orders this after a sleeper's look at the generation, or before it.
    { std::lock_guard lock(sleep_mutex_); }
    wake_.notify_all();
  }

  std::mutex busy_;  // one loop at a time
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> sleepers_{0};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> solo_until_ns_{0};  // loops before this time run on their caller alone
  int64_t last_stall_ns_ = INT64_MIN / 2;   // guarded by busy_
  int64_t solo_ns_ = ns(kSoloFirst);        // guarded by busy_
  alignas(64) std::atomic<int64_t> next_chunk_{0};
  alignas(64) std::atomic<int64_t> done_chunks_{0};
  Loop loop_;
  std::vector<std::unique_ptr<WorkerSlot>> slots_;
  std::vector<std::thread> threads_;
  static thread_local bool inside_loop_;
};

thread_local bool ThreadPool::inside_loop_ = false;

ThreadPool& pool() {
  static ThreadPool instance;
  return instance;
}

}  // namespace

void parallel_for_chunks(int64_t n_items, int64_t chunk, int n_threads, LoopBody body) {
  if (n_items <= 0) return;
  chunk = std::max<int64_t>(chunk, 1);
  n_threads = int(std::clamp<int64_t>(n_threads, 1, (n_items + chunk - 1) / chunk));
  if (n_threads > 1 && pool().run(n_items, chunk, n_threads, body)) return;
  for (int64_t begin = 0; begin < n_items; begin += chunk) body.run(body.context, begin, std::min(n_items, begin + chunk), 0);
}

int64_t count_items_on_a_pool_of_its_own(int64_t n_items, int n_threads) {
  std::atomic<int64_t> visited{0};
  const auto count = [&](int64_t begin, int64_t end, int) { visited += end - begin; };
  ThreadPool own;
  if (!own.run(n_items, 1, n_threads, LoopBody{[](const void* context, int64_t begin, int64_t end, int worker) {
                                                 (*static_cast<const decltype(count)*>(context))(begin, end, worker);
                                               },
                                               &count}))
    return -1;
  return visited.load();
}

void set_stall_fallback(bool allowed) { stall_fallback.store(allowed); }

int64_t chunk_for(int64_t n_items, int n_threads, int chunks_per_thread) {
  const int64_t n_chunks = std::max<int64_t>(1, int64_t(std::max(n_threads, 1)) * std::max(chunks_per_thread, 1));
  return std::max<int64_t>(1, (n_items + n_chunks - 1) / n_chunks);
}

}  // namespace slm::ops

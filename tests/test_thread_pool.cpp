// The loop threads (lib/ops/thread_pool): every item runs exactly once, on a thread numbered
// below the thread count, whatever the chunking, nesting or concurrent callers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "lib/ops/thread_pool.hpp"

namespace {

using slm::ops::parallel_for;

// Runs one loop and checks that each item was visited once and each worker number was valid.
void expect_each_item_once(int64_t n_items, int64_t chunk, int n_threads) {
  std::vector<std::atomic<int>> visits(size_t(std::max<int64_t>(n_items, 0)));
  std::atomic<int> bad_workers{0}, bad_chunks{0};
  parallel_for(n_items, chunk, n_threads, [&](int64_t begin, int64_t end, int worker) {
    if (worker < 0 || worker >= std::max(n_threads, 1)) ++bad_workers;
    if (begin % std::max<int64_t>(chunk, 1) != 0 || end - begin > std::max<int64_t>(chunk, 1) || end <= begin) ++bad_chunks;
    for (int64_t i = begin; i < end; ++i) ++visits[size_t(i)];
  });
  EXPECT_EQ(bad_workers.load(), 0) << n_items << " items, chunk " << chunk << ", " << n_threads << " threads";
  EXPECT_EQ(bad_chunks.load(), 0) << n_items << " items, chunk " << chunk << ", " << n_threads << " threads";
  for (int64_t i = 0; i < n_items; ++i)
    ASSERT_EQ(visits[size_t(i)].load(), 1) << "item " << i << " of " << n_items << ", chunk " << chunk << ", "
                                           << n_threads << " threads";
}

TEST(ThreadPool, EveryItemRunsOnceForAnyChunkAndThreadCount) {
  for (int n_threads : {1, 2, 3, 4, 8})
    for (int64_t n_items : {0, 1, 2, 7, 64, 1000})
      for (int64_t chunk : {0, 1, 3, 64, 5000}) expect_each_item_once(n_items, chunk, n_threads);
}

TEST(ThreadPool, ManyShortLoopsInARowEachSeeTheirOwnItems) {
  // A forward pass runs hundreds of short loops back to back; a worker that reads the next
  // loop's description half-written would show here as a lost or doubled item.
  std::vector<std::atomic<int64_t>> sums(64);
  for (int loop = 0; loop < 5000; ++loop) {
    const int64_t n_items = 1 + loop % 37;
    parallel_for(n_items, 1 + loop % 3, 2 + loop % 2, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) sums[size_t(i)] += loop;
    });
  }
  for (int64_t i = 0; i < 37; ++i) {
    int64_t expected = 0;
    for (int loop = 0; loop < 5000; ++loop)
      if (i < 1 + loop % 37) expected += loop;
    EXPECT_EQ(sums[size_t(i)].load(), expected) << "item " << i;
  }
}

TEST(ThreadPool, ALoopInsideALoopRunsOnItsThreadAndFinishes) {
  std::atomic<int64_t> inner_items{0};
  parallel_for(8, 1, 2, [&](int64_t, int64_t, int) {
    parallel_for(100, 10, 2, [&](int64_t begin, int64_t end, int worker) {
      EXPECT_EQ(worker, 0);  // inline: the nested loop does not take the pool
      inner_items += end - begin;
    });
  });
  EXPECT_EQ(inner_items.load(), 800);
}

TEST(ThreadPool, LoopsFromTwoThreadsAtOnceBothComplete) {
  // The second caller finds the pool taken and runs its loop alone; both results are whole.
  std::atomic<int64_t> total_a{0}, total_b{0};
  const auto run_loops = [](std::atomic<int64_t>& total) {
    for (int loop = 0; loop < 500; ++loop)
      parallel_for(100, 7, 2, [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) total += i;
      });
  };
  std::thread other([&] { run_loops(total_b); });
  run_loops(total_a);
  other.join();
  EXPECT_EQ(total_a.load(), 500 * 4950);
  EXPECT_EQ(total_b.load(), 500 * 4950);
}

TEST(ThreadPool, WorkersThatFellAsleepWakeForTheNextLoop) {
  // On a loaded machine a late worker could count as stalled and keep the next loops on the
  // caller; this test is about waking, so that fallback is off here.
  slm::ops::set_stall_fallback(false);
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // far past the workers' spinning
    std::atomic<int> workers_seen{0};
    std::atomic<int64_t> items{0};
    parallel_for(64, 1, 2, [&](int64_t begin, int64_t end, int worker) {
      if (worker == 1) workers_seen = 1;
      items += end - begin;
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // long enough for a worker to join
    });
    EXPECT_EQ(items.load(), 64);
    EXPECT_EQ(workers_seen.load(), 1) << "round " << round << ": the sleeping worker never took part";
  }
  slm::ops::set_stall_fallback(true);
}

TEST(ThreadPool, LoopsThatStalledOnADescheduledWorkerSendTheNextLoopsToTheCaller) {
  // Worker 1 takes 20 ms over its chunk (as if descheduled), the caller 1 ms over each of its own:
  // the caller waits far longer than its own chunks took. After two such loops within 50 ms the
  // next loop runs on the caller alone, and once the time alone is over (at most 640 ms) the
  // workers take part again. A worker that woke too late to stall anything just means another try.
  slm::ops::set_stall_fallback(true);
  // The stalled loop has 4 items: the caller's 3 take 3 ms, so it waits ~17 ms for the worker's, far
  // past 4 of its own chunks even when a loaded machine oversleeps; with 16 items (15 ms of its own
  // against the worker's 20) oversleeping ate the wait, and two stalls 50 ms apart never came.
  const auto loop_on_workers = [](int64_t items, std::chrono::microseconds worker_chunk,
                                  std::chrono::microseconds own_chunk) {
    std::atomic<int> on_workers{0};
    parallel_for(items, 1, 2, [&](int64_t, int64_t, int worker) {
      if (worker != 0) ++on_workers;
      std::this_thread::sleep_for(worker != 0 ? worker_chunk : own_chunk);
    });
    return on_workers.load();
  };
  bool alone = false;
  for (int attempt = 0; attempt < 20 && !alone; ++attempt) {
    loop_on_workers(4, std::chrono::milliseconds(20), std::chrono::milliseconds(1));
    alone = loop_on_workers(16, std::chrono::microseconds(200), std::chrono::microseconds(200)) == 0;
  }
  EXPECT_TRUE(alone) << "no loop after stalled loops ran on its caller alone";

  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  std::atomic<bool> back{false};
  for (int attempt = 0; attempt < 20 && !back; ++attempt)
    parallel_for(64, 1, 2, [&](int64_t, int64_t, int worker) {
      if (worker != 0) back = true;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    });
  EXPECT_TRUE(back) << "the workers never took part again after the time alone";
}

TEST(ThreadPool, WithTheStallFallbackOffStalledLoopsKeepTheirWorkers) {
  // The other side of the test above: without the fallback, the loop after the stalls is shared.
  slm::ops::set_stall_fallback(false);
  bool shared = true;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::atomic<int> on_workers{0};
    for (int stall = 0; stall < 2; ++stall)
      parallel_for(16, 1, 2, [&](int64_t, int64_t, int worker) {
        std::this_thread::sleep_for(worker != 0 ? std::chrono::milliseconds(20) : std::chrono::milliseconds(1));
      });
    parallel_for(64, 1, 2, [&](int64_t, int64_t, int worker) {
      if (worker != 0) ++on_workers;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    });
    shared = on_workers.load() > 0;
    if (shared) break;
  }
  slm::ops::set_stall_fallback(true);
  EXPECT_TRUE(shared);
}

TEST(ThreadPool, APoolStoppedRightAfterItsFirstLoopJoinsItsThreads) {
  // A worker created for the loop may start running only after the loop and the stop: it must
  // still see the stop (this once hung at every process's exit, one time in three). A hang shows
  // as this test's timeout.
  for (int round = 0; round < 200; ++round)
    ASSERT_EQ(slm::ops::count_items_on_a_pool_of_its_own(1 + round % 5, 2 + round % 3), 1 + round % 5) << "round " << round;
}

TEST(ThreadPool, ChunkForSplitsIntoAboutTheAskedNumberOfChunks) {
  EXPECT_EQ(slm::ops::chunk_for(100, 2, 4), 13);  // 8 chunks: 7 of 13 and one of 9
  EXPECT_EQ(slm::ops::chunk_for(100, 1, 1), 100);
  EXPECT_EQ(slm::ops::chunk_for(3, 4, 4), 1);
  EXPECT_EQ(slm::ops::chunk_for(0, 2, 4), 1);
  EXPECT_EQ(slm::ops::chunk_for(10, 0, 0), 10);  // nonsense counts mean one thread, one chunk
}

}  // namespace

// The threads every op's parallel loop runs on: one pool for the process, kept between calls.
//
// Why not OpenMP's fork/join: its barriers wait for every thread of the team, so one thread that
// loses its time slice (to the HTTP thread, a client on the same machine, another process)
// stalls the whole step; and libgomp stops spinning between regions as soon as more threads
// exist than cores (a second OpenMP team, from the thread that loaded the model, is enough), so
// every region then pays a futex wake-up. That cost slm-server, whose forward passes run on its
// scheduler thread, a third of its single-stream speed.
//
// Here the caller takes part in its own loop, the items are claimed in chunks from a shared
// counter, and the caller waits only for chunks that another thread has claimed: a worker that
// is late leaves its share to the others. Workers spin briefly after a loop (a forward pass calls
// the next one within microseconds), then sleep. A worker descheduled in the middle of its chunk
// (a busy process beside slm) still makes the caller wait for a scheduler time slice; when loops
// wait like that twice within 50 ms, the next loops run on the caller alone for a while (10 ms,
// doubling each time up to 640 ms), since one thread then has a core to itself and is faster.
//
// Which thread runs an item never changes what the item computes, so results do not depend on
// the thread count or on the timing.
#pragma once

#include <cstdint>

namespace slm::ops {

// A loop body: items [begin, end) on the thread numbered `worker` (0 is the caller, then
// 1 .. n_threads - 1), for per-thread scratch.
struct LoopBody {
  void (*run)(const void* context, int64_t begin, int64_t end, int worker) = nullptr;
  const void* context = nullptr;
};

// Runs body over items [0, n_items) in chunks of `chunk` items (the last may be shorter) on up to
// n_threads threads, the calling thread included, and returns when every item is done. A call
// made from inside a loop body, or while another thread's loop holds the pool, runs on the
// calling thread alone (results are the same).
void parallel_for_chunks(int64_t n_items, int64_t chunk, int n_threads, LoopBody body);

// parallel_for_chunks with any callable f(begin, end, worker).
template <typename F>
void parallel_for(int64_t n_items, int64_t chunk, int n_threads, const F& f) {
  parallel_for_chunks(n_items, chunk, n_threads,
                      LoopBody{[](const void* context, int64_t begin, int64_t end, int worker) {
                                 (*static_cast<const F*>(context))(begin, end, worker);
                               },
                               &f});
}

// The chunk that splits n_items into about `chunks_per_thread` chunks per thread: more chunks
// than threads let the others take over a late thread's share.
int64_t chunk_for(int64_t n_items, int n_threads, int chunks_per_thread);

// For tests: whether a loop that stalled on a descheduled worker sends the next loops to their
// caller alone (on by default). Tests that count which threads took part switch it off.
void set_stall_fallback(bool allowed);

// For the tests of starting and stopping: starts a pool of its own, counts n_items items in one
// loop on it, and stops it (joining its threads, however late they started). -1 when it could
// not run (called from inside a loop).
int64_t count_items_on_a_pool_of_its_own(int64_t n_items, int n_threads);

}  // namespace slm::ops

/* SPDX-License-Identifier: MIT */
/*
 * Relacy model of weft's split deque (lib/deque.h, lib/deque.c).
 *
 * WHAT IS MODELLED
 *   Every function of the deque, transcribed statement for statement in deque_model.h with the
 *   same memory order on every atomic access:
 *     deque.h  weft__deque_publish  weft__deque_push  weft__deque_try_push
 *              weft__deque_take_shared  weft__deque_take  weft__deque_take_if  weft__deque_room
 *              weft__deque_has_private
 *              weft__deque_maybe_nonempty  weft__deque_owner_nonempty
 *     deque.c  weft__deque_steal  weft__deque_grow  buf_new  weft__deque_init/_destroy
 *   top, bottom and split are rl::atomic<int64_t>, buf an rl::atomic<DequeBuf *>, the slots
 *   rl::atomic<Item *> accessed relaxed as in lib/. The buffer's mask, a plain field in lib/, is an
 *   rl::var, so a thief's read of it must be ordered after the write. Retired buffers stay on the
 *   `retired` list until destroy (in after()), as in lib/; Relacy's allocator reports any access
 *   to freed memory and any leak. Items are pointers to plain data: Item::payload is an
 *   rl::var<int> that the owner writes before pushing (shared or private) and whoever obtains the
 *   item reads and then overwrites, so a thief that obtains an item whose push or publish does
 *   not happen before its steal (an unpublished slot) is a DATA RACE, and so is an item handed
 *   out twice (or a failed assert).
 *
 * LINE-BY-LINE CORRESPONDENCE: see the table at the top of deque_model.h (DequeOrders names
 *   every non-relaxed access after the lib/ line it copies; everything else is relaxed in both).
 *   check_drift.py compares the two, function for function.
 *
 * DEVIATIONS FROM lib/ (none changes the algorithm)
 *   - Initial capacity 2 (lib/ rounds up to 16), so that growth happens within three pushes and
 *     try_push finds the buffer full; grow doubles as in lib/.
 *   - New buffers' slots are stored NULL (relaxed) before publication. lib/'s buf_new has
 *     weft__mem_alloc zero them, which is no atomic store, and Relacy would otherwise see a
 *     never-written atomic: a thief that read top before the owner moved on can load a slot of
 *     a newer buffer that nothing wrote (its CAS then fails and the value is dropped). Test
 *     big_uninit_slot_read leaves the slots unwritten and expects Relacy to report that read
 *     (thief reads top = 0; owner takes item 0 by CAS, pushes 1, 2, 3 and grows, copying 1..2;
 *     thief reads split = 4 and loads slot 0 of the new buffer): why lib/ zeroes them.
 *   - Allocation never fails (push's -ENOMEM path is not modelled).
 *   - steal has no min_top argument: every caller in lib/ passes WEFT_STEAL_ANY.
 *
 * THE TESTS (1 owner thread + 1 or 2 thief threads)
 *   The owner runs a script; 'P' and 'p' first write the next item's payload:
 *     P  push (a shared push: every private item below it is shared too)
 *     p  try_push (an item it refuses, buffer full, is not counted), then publish when it
 *        returns 2 (the shared part was empty), as join.c's offer does
 *     S  publish if has_private (weft__help's and weft__enqueue's first step)
 *     T  take (private, or take_shared: the last shared item raced with a CAS)
 *     R  take_if of the newest item pushed that the owner has not obtained or given up (join.c
 *        reclaim, and weft_scope_wait going down its frames): taken, then the item pushed
 *        before it is the next one R asks for; NULL, when thieves took it and every older item;
 *        or another item (nothing taken)
 *   Each thief makes S steal attempts, each retried after WEFT_STEAL_ABORT up to R more times
 *   (worker.c retries 4 times). When every thread has finished, after() checks top <= split <=
 *   bottom and takes what is left (the owner is then quiescent).
 *
 * THE PROPERTY, checked after every execution: each pushed item was obtained exactly once (by the
 *   owner, a thief or the final drain: no loss, no duplicate), with the payload written before its
 *   push; top <= split <= bottom; and Relacy's own checks: no data race (payloads, mask), no
 *   access to freed memory, no read of a never-written atomic, no leak.
 *
 * SCHEDULERS: "full" is Relacy's exhaustive search (every interleaving at every atomic access,
 *   and every choice of store a load may read); "context-bound" is the same search restricted to
 *   executions with at most N preemptions; "random" samples. Relacy's limits: in the exhaustive
 *   modes a plain load may read the latest store or the one before (the random mode goes further
 *   back), and a seq_cst load reads the latest store when that store is seq_cst. A load never
 *   reads a store that has not executed yet, so load buffering is not explored. Relacy's
 *   seq_cst fence is stronger than C11's (not used by the deque).
 *
 * BOUNDS (the default suite; iterations = executions explored, on this machine in 110 s total)
 *   full_ptt_1thief             PTT,      1 thief  x1 steal (+1 retry)  full     1 284 566
 *   full_pptt_1thief            PPTT,     1 thief  x1 (+1)              full     3 226 938
 *   full_ppp_grow_1thief        PPP,      1 thief  x1 (+1), grows 2->4  full     7 439 098
 *   full_private_1thief         PpTT,     1 thief  x1 (+1)              full     1 314 086
 *   full_publish_1thief         ppSTT,    1 thief  x1 (+1)              full     6 440 348
 *   full_reclaim_1thief         PpRR,     1 thief  x1 (+1)              full     6 060 634
 *   bound_private_take_1thief   PppRRT,   1 thief  x1 (+1)              bound 8  7 268 800
 *     (its full search, 132 M executions, takes over 5 minutes)
 *   bound_pptt_1thief           PPTT,     1 thief  x2 (+2)              bound 6  1 163 410
 *   bound_ptppt_grow_1thief     PTPPT,    1 thief  x2 (+2), grows       bound 4    115 510
 *   bound_ptppp_grow_1thief     PTPPP,    1 thief  x2 (+1), grows       bound 4  1 149 202
 *   bound_private_grow_1thief   PppPTT,   1 thief  x2 (+1), full, grows bound 4    444 064
 *   bound_trypush_1thief        PPpTpT,   1 thief  x2 (+1), full        bound 4    115 008
 *   bound_empty_private_1thief  PTTppSRT, 1 thief  x2 (+1)              bound 4    358 986
 *   bound_ppt_2thieves          PPT,      2 thieves x1 (+1)             bound 4    750 068
 *   bound_ppsrt_2thieves        PpSRT,    2 thieves x1 (+1)             bound 3    228 696
 *   bound_ppp_grow_2thieves     PPP,      2 thieves x2 (+1), grows      bound 3  5 654 728
 *   random_mixed_2thieves       PpTpSPpRTT, 2 thieves x2 (+2)           random     500 000
 *   random_ppppt_pptt_1thief    PPPPTPPTT, 1 thief x3 (+3), grows 2x    random     500 000
 *   With WEFT_MODEL_BIG=1 also: big_full_pppt_grow_1thief (full, 29 261 558, ~80 s),
 *   big_bound_ptppt_2thieves (bound 4), big_bound_mixed_2thieves (bound 3, 25 443 164, ~120 s),
 *   big_random_2thieves (20 000 000, ~75 s) and big_uninit_slot_read (above). Full search with
 *   two thieves does not finish in 20 minutes even for PPT.
 *
 * NEGATIVE TESTS (each must fail; the suite passes when Relacy finds the bug, and says what):
 *     neg_push_relaxed        push's release store of split made relaxed: a thief reads the
 *                             payload with no happens-before (DATA RACE, 1st execution).
 *     neg_publish_relaxed     publish's release store of split made relaxed: a thief steals a
 *                             private item try_push wrote and reads its payload with no
 *                             happens-before (DATA RACE, 1st execution).
 *     neg_take_split_release  take_shared's seq_cst store of split made release: the thief's
 *                             seq_cst load of split can miss it while the owner's load of top
 *                             misses the thief's CAS, so both take the same item (the owner
 *                             takes item 1 without CAS; the thief, having stolen item 0, steals
 *                             item 1 with a stale split): DATA RACE on its payload, 5th
 *                             execution.
 *     neg_take_relaxed        take_shared's store of split and load of top both relaxed (the
 *                             paper's seq_cst fence gone): the same duplicate.
 *     neg_steal_split_acquire steal's seq_cst load of split made acquire: the same duplicate.
 *     neg_steal_split_relaxed steal's load of split made relaxed: the thief reads a payload the
 *                             push published with no happens-before (DATA RACE).
 *     neg_grow_relaxed        grow's release store of buf made relaxed: a thief reads the new
 *                             buffer's mask before it is published (DATA RACE).
 *     neg_free_retired        grow frees the old buffer instead of retiring it: a thief reads it
 *                             (ACCESS TO FREED MEMORY).
 *     neg_no_repair           take_shared leaves split lowered after it won the last item: the
 *                             next take finds it "private" and takes it again (USER ASSERT: the
 *                             payload was already consumed).
 *     neg_private_take_any    take takes the bottom item privately even when it is shared: the
 *                             owner and the thief both get item 0 (DATA RACE).
 *
 * RUNNING
 *   deque_relacy                 the default suite (see main() for the table and bounds).
 *   deque_relacy NAME... | all   the named tests, or every test including the big ones.
 *   WEFT_MODEL_BIG=1             the default suite plus the big configurations.
 *   WEFT_MODEL_TRACE=1           print the execution history of a failing run (it is always
 *                                written to deque_relacy.NAME.trace).
 *   deque_relacy custom SCRIPT THIEVES STEALS RETRIES full|bound|random BOUND ITERATIONS [ORDERS]
 *                                one ad-hoc run (ORDERS: lib push_relaxed publish_relaxed
 *                                take_split_release take_relaxed steal_split_acquire
 *                                steal_split_relaxed grow_relaxed free_retired no_repair
 *                                private_take_any; WEFT_MODEL_UNINIT_SLOTS=1 leaves new slots
 *                                unwritten).
 */
#include "deque_model.h"
#include "model_runner.h"

namespace
{

using model::Deque;
using model::DequeOrders;

/* ---- the weakened variants for the negative tests ---- */

struct PushRelaxed : DequeOrders {
    static const rl::memory_order push_split = rl::mo_relaxed;
};
struct PublishRelaxed : DequeOrders {
    static const rl::memory_order publish_split = rl::mo_relaxed;
};
struct TakeSplitRelease : DequeOrders {
    static const rl::memory_order take_split = rl::mo_release;
};
struct TakeRelaxed : DequeOrders {
    static const rl::memory_order take_split = rl::mo_relaxed;
    static const rl::memory_order take_top = rl::mo_relaxed;
};
struct StealSplitAcquire : DequeOrders {
    static const rl::memory_order steal_split = rl::mo_acquire;
};
struct StealSplitRelaxed : DequeOrders {
    static const rl::memory_order steal_split = rl::mo_relaxed;
};
struct GrowRelaxed : DequeOrders {
    static const rl::memory_order grow_buf = rl::mo_relaxed;
};
struct FreeRetired : DequeOrders {
    static const bool free_old_buffer = true;
};
struct NoRepair : DequeOrders {
    static const bool take_repair = false;
};
struct PrivateTakeAny : DequeOrders {
    static const bool take_private_any = true;
};

/* ---- configurations ---- */

struct Config {
    const char *script; /* the owner's operations */
    int steals;         /* steal attempts per thief */
    int retries;        /* extra attempts after WEFT_STEAL_ABORT */
};
Config g_cfg;

const int MAX_ITEMS = 8;
const int INITIAL_CAP = 2;

struct Item {
    rl::var<int> payload; /* the task's data, published by the push */
    int id;               /* bookkeeping, set in before() */
};

template <class O, int THIEVES>
struct DequeTest : rl::test_suite<DequeTest<O, THIEVES>, 1 + THIEVES> {
    Deque<O, Item> d;
    Item items[MAX_ITEMS];
    int nitems = 0;
    int got[THIEVES + 2][MAX_ITEMS] = {}; /* [owner, thieves..., final drain][item] */
    bool pushed[MAX_ITEMS] = {};          /* try_push may refuse an item */

    void before()
    {
        for (const char *c = g_cfg.script; *c; c++)
            nitems += (*c == 'P' || *c == 'p');
        RL_ASSERT(nitems <= MAX_ITEMS);
        for (int i = 0; i < nitems; i++) {
            items[i].id = i;
            items[i].payload($) = 0;
        }
        d.init(INITIAL_CAP);
    }

    /* Reads the payload (a race unless the push happens-before this point) and overwrites it
     * (a race with any other thread that obtained the same item). */
    void obtained(unsigned who, Item *x)
    {
        RL_ASSERT(x >= items && x < items + nitems);
        int v = x->payload($);
        RL_ASSERT(v == 100 + x->id);
        x->payload($) = -1;
        got[who][x->id]++;
    }

    /* The item pushed before x, or NULL. */
    Item *older(Item *x)
    {
        for (int i = x->id - 1; i >= 0; i--) {
            if (pushed[i])
                return &items[i];
        }
        return nullptr;
    }

    void thread(unsigned index)
    {
        if (index == 0) {
            int next = 0;
            Item *want = nullptr; /* the item 'R' asks for next */
            for (const char *c = g_cfg.script; *c; c++) {
                if (*c == 'P' || *c == 'p') {
                    Item *it = &items[next++];
                    it->payload($) = 100 + it->id;
                    if (*c == 'P') {
                        d.push(it);
                    } else {
                        int r = d.try_push(it);
                        if (r == 0)
                            continue; /* full: not pushed */
                        if (r == 2)
                            d.publish(); /* join.c offer: thieves took the shared part */
                    }
                    pushed[it->id] = true;
                    want = it;
                } else if (*c == 'S') {
                    if (d.has_private()) /* weft__help, weft__enqueue */
                        d.publish();
                } else if (*c == 'T') {
                    Item *x = d.take();
                    if (x != nullptr)
                        obtained(0, x);
                } else if (*c == 'R') {
                    while (want != nullptr && got[0][want->id] != 0)
                        want = older(want); /* T took it */
                    if (want == nullptr)
                        continue;
                    Item *x = d.take_if(want); /* join.c reclaim, weft_scope_wait */
                    if (x == want) {
                        obtained(0, x);
                        want = older(want);
                    } else if (x == nullptr) {
                        want = nullptr; /* stolen, and every older item with it */
                    } else {
                        RL_ASSERT(x == model::take_other<Item>());
                    }
                }
            }
        } else {
            for (int s = 0; s < g_cfg.steals; s++) {
                Item *x;
                int tries = 0;
                do {
                    x = d.steal();
                } while (x == model::steal_abort<Item>() && tries++ < g_cfg.retries);
                if (x != model::steal_empty<Item>() && x != model::steal_abort<Item>())
                    obtained(index, x);
            }
        }
    }

    void after()
    {
        const unsigned drain = THIEVES + 1;
        int64_t t = d.top.load(rl::mo_relaxed, $);
        int64_t s = d.split.load(rl::mo_relaxed, $);
        int64_t b = d.bottom.load(rl::mo_relaxed, $);
        RL_ASSERT(t <= s && s <= b); /* deque.c, Invariants (the owner is quiescent) */
        Item *x;
        for (int n = 0; n <= MAX_ITEMS && (x = d.take()) != nullptr; n++)
            obtained(drain, x);
        for (int i = 0; i < nitems; i++) {
            int n = 0;
            for (unsigned w = 0; w <= drain; w++)
                n += got[w][i];
            RL_ASSERT(n == (pushed[i] ? 1 : 0)); /* exactly once */
        }
        d.destroy();
    }
};

template <class O, int THIEVES>
model::Result run(rl::scheduler_type_e s, unsigned long long iterations, unsigned bound)
{
    return model::run<DequeTest<O, THIEVES>>(s, iterations, bound);
}

/* One Case per configuration: the script and steal counts live in a setup function. */
#define CONFIG(fn, SCRIPT, STEALS, RETRIES)                                                        \
    void fn()                                                                                      \
    {                                                                                              \
        g_cfg = Config{SCRIPT, STEALS, RETRIES};                                                   \
        model::g_uninit_slots = false;                                                             \
    }
CONFIG(c_ptt, "PTT", 1, 1)
CONFIG(c_pptt1, "PPTT", 1, 1)
CONFIG(c_pptt, "PPTT", 2, 2)
CONFIG(c_ppp1, "PPP", 1, 1)
CONFIG(c_ppp, "PPP", 2, 1)
CONFIG(c_pppt, "PPPT", 1, 1)
CONFIG(c_pptt_private, "PpTT", 1, 1)
CONFIG(c_ppstt, "ppSTT", 1, 1)
CONFIG(c_reclaim, "PpRR", 1, 1)
CONFIG(c_private_take, "PppRRT", 1, 1)
CONFIG(c_ptppt, "PTPPT", 2, 2)
CONFIG(c_ptppp, "PTPPP", 2, 1)
CONFIG(c_private_grow, "PppPTT", 2, 1)
CONFIG(c_trypush, "PPpTpT", 2, 1)
CONFIG(c_empty_private, "PTTppSRT", 2, 1)
CONFIG(c_ppt1, "PPT", 1, 1)
CONFIG(c_ppt2, "PPT", 2, 1)
CONFIG(c_ppsrt, "PpSRT", 1, 1)
CONFIG(c_mixed, "PpTpSPpRTT", 2, 2)
CONFIG(c_pppp_t_pp_tt, "PPPPTPPTT", 3, 3)
CONFIG(c_pp, "PP", 2, 1)
CONFIG(c_pp_private, "pp", 2, 1)
CONFIG(c_pt, "PT", 1, 1)
void c_ptppp_uninit()
{
    c_ptppp();
    model::g_uninit_slots = true;
}

#define DESC(script, thieves, steals, retries)                                                     \
    "owner " script ", " #thieves " thief/thieves x " #steals " steals (+" #retries " retries)"

} // namespace

int main(int argc, char **argv)
{
    using model::Case;
    using model::MUST_PASS;
    using model::NEGATIVE;
    const rl::scheduler_type_e FULL = rl::sched_full, BOUND = rl::sched_bound,
                               RANDOM = rl::sched_random;
    std::vector<Case> cases = {
        /* exhaustive: every interleaving */
        {"full_ptt_1thief", false, MUST_PASS, run<DequeOrders, 1>, FULL, 0, 0, DESC("PTT", 1, 1, 1),
         c_ptt},
        {"full_pptt_1thief", false, MUST_PASS, run<DequeOrders, 1>, FULL, 0, 0,
         DESC("PPTT", 1, 1, 1), c_pptt1},
        {"full_ppp_grow_1thief", false, MUST_PASS, run<DequeOrders, 1>, FULL, 0, 0,
         DESC("PPP", 1, 1, 1), c_ppp1},
        {"full_private_1thief", false, MUST_PASS, run<DequeOrders, 1>, FULL, 0, 0,
         DESC("PpTT", 1, 1, 1), c_pptt_private},
        {"full_publish_1thief", false, MUST_PASS, run<DequeOrders, 1>, FULL, 0, 0,
         DESC("ppSTT", 1, 1, 1), c_ppstt},
        {"full_reclaim_1thief", false, MUST_PASS, run<DequeOrders, 1>, FULL, 0, 0,
         DESC("PpRR", 1, 1, 1), c_reclaim},

        /* exhaustive within a preemption bound */
        {"bound_private_take_1thief", false, MUST_PASS, run<DequeOrders, 1>, BOUND, 0, 8,
         DESC("PppRRT", 1, 1, 1), c_private_take},
        {"bound_pptt_1thief", false, MUST_PASS, run<DequeOrders, 1>, BOUND, 0, 6,
         DESC("PPTT", 1, 2, 2), c_pptt},
        {"bound_ptppt_grow_1thief", false, MUST_PASS, run<DequeOrders, 1>, BOUND, 0, 4,
         DESC("PTPPT", 1, 2, 2), c_ptppt},
        {"bound_ptppp_grow_1thief", false, MUST_PASS, run<DequeOrders, 1>, BOUND, 0, 4,
         DESC("PTPPP", 1, 2, 1), c_ptppp},
        {"bound_private_grow_1thief", false, MUST_PASS, run<DequeOrders, 1>, BOUND, 0, 4,
         DESC("PppPTT", 1, 2, 1), c_private_grow},
        {"bound_trypush_1thief", false, MUST_PASS, run<DequeOrders, 1>, BOUND, 0, 4,
         DESC("PPpTpT", 1, 2, 1), c_trypush},
        {"bound_empty_private_1thief", false, MUST_PASS, run<DequeOrders, 1>, BOUND, 0, 4,
         DESC("PTTppSRT", 1, 2, 1), c_empty_private},
        {"bound_ppt_2thieves", false, MUST_PASS, run<DequeOrders, 2>, BOUND, 0, 4,
         DESC("PPT", 2, 1, 1), c_ppt1},
        {"bound_ppsrt_2thieves", false, MUST_PASS, run<DequeOrders, 2>, BOUND, 0, 3,
         DESC("PpSRT", 2, 1, 1), c_ppsrt},
        {"bound_ppp_grow_2thieves", false, MUST_PASS, run<DequeOrders, 2>, BOUND, 0, 3,
         DESC("PPP", 2, 2, 1), c_ppp},
        /* random, larger */
        {"random_mixed_2thieves", false, MUST_PASS, run<DequeOrders, 2>, RANDOM, 500000, 0,
         DESC("PpTpSPpRTT", 2, 2, 2), c_mixed},
        {"random_ppppt_pptt_1thief", false, MUST_PASS, run<DequeOrders, 1>, RANDOM, 500000, 0,
         DESC("PPPPTPPTT", 1, 3, 3), c_pppp_t_pp_tt},
        /* negative: each must fail */
        {"neg_push_relaxed", false, NEGATIVE, run<PushRelaxed, 1>, FULL, 0, 0, DESC("PP", 1, 2, 1),
         c_pp},
        {"neg_publish_relaxed", false, NEGATIVE, run<PublishRelaxed, 1>, FULL, 0, 0,
         DESC("pp", 1, 2, 1), c_pp_private},
        {"neg_take_split_release", false, NEGATIVE, run<TakeSplitRelease, 1>, FULL, 0, 0,
         DESC("PPT", 1, 2, 1), c_ppt2},
        {"neg_take_relaxed", false, NEGATIVE, run<TakeRelaxed, 1>, FULL, 0, 0, DESC("PPT", 1, 2, 1),
         c_ppt2},
        {"neg_steal_split_acquire", false, NEGATIVE, run<StealSplitAcquire, 1>, FULL, 0, 0,
         DESC("PPT", 1, 2, 1), c_ppt2},
        {"neg_steal_split_relaxed", false, NEGATIVE, run<StealSplitRelaxed, 1>, FULL, 0, 0,
         DESC("PP", 1, 2, 1), c_pp},
        {"neg_grow_relaxed", false, NEGATIVE, run<GrowRelaxed, 1>, FULL, 0, 0, DESC("PPP", 1, 2, 1),
         c_ppp},
        {"neg_free_retired", false, NEGATIVE, run<FreeRetired, 1>, BOUND, 0, 3,
         DESC("PPP", 1, 2, 1), c_ppp},
        {"neg_no_repair", false, NEGATIVE, run<NoRepair, 1>, FULL, 0, 0, DESC("PTT", 1, 1, 1),
         c_ptt},
        {"neg_private_take_any", false, NEGATIVE, run<PrivateTakeAny, 1>, FULL, 0, 0,
         DESC("PT", 1, 1, 1), c_pt},
        /* big: WEFT_MODEL_BIG=1 */
        {"big_full_pppt_grow_1thief", true, MUST_PASS, run<DequeOrders, 1>, FULL, 0, 0,
         DESC("PPPT", 1, 1, 1), c_pppt},
        {"big_bound_ptppt_2thieves", true, MUST_PASS, run<DequeOrders, 2>, BOUND, 0, 4,
         DESC("PTPPT", 2, 2, 2), c_ptppt},
        {"big_bound_mixed_2thieves", true, MUST_PASS, run<DequeOrders, 2>, BOUND, 0, 3,
         DESC("PpTpSPpRTT", 2, 2, 2), c_mixed},
        {"big_random_2thieves", true, MUST_PASS, run<DequeOrders, 2>, RANDOM, 20000000, 0,
         DESC("PpTpSPpRTT", 2, 2, 2), c_mixed},
        /* big: the read of a never-written slot that unzeroed buffers would allow (see the
         * header); Relacy must report it */
        {"big_uninit_slot_read", true, NEGATIVE, run<DequeOrders, 1>, BOUND, 0, 3,
         DESC("PTPPP", 1, 2, 1) ", slots left unwritten", c_ptppp_uninit},
    };

    if (argc >= 9 && strcmp(argv[1], "custom") == 0) {
        g_cfg = Config{argv[2], atoi(argv[4]), atoi(argv[5])};
        model::g_uninit_slots = model::env_flag("WEFT_MODEL_UNINIT_SLOTS");
        int thieves = atoi(argv[3]);
        rl::scheduler_type_e s = model::sched_from(argv[6]);
        unsigned bound = (unsigned)atoi(argv[7]);
        unsigned long long iters = strtoull(argv[8], nullptr, 10);
        std::string o = argc >= 10 ? argv[9] : "lib";
        model::Result r;
#define CUSTOM(name, type)                                                                         \
    else if (o == name) r =                                                                        \
        thieves == 1 ? run<type, 1>(s, iters, bound) : run<type, 2>(s, iters, bound);
        if (false) {
        }
        CUSTOM("lib", DequeOrders)
        CUSTOM("push_relaxed", PushRelaxed)
        CUSTOM("publish_relaxed", PublishRelaxed)
        CUSTOM("take_split_release", TakeSplitRelease)
        CUSTOM("take_relaxed", TakeRelaxed)
        CUSTOM("steal_split_acquire", StealSplitAcquire)
        CUSTOM("steal_split_relaxed", StealSplitRelaxed)
        CUSTOM("grow_relaxed", GrowRelaxed)
        CUSTOM("free_retired", FreeRetired)
        CUSTOM("no_repair", NoRepair)
        CUSTOM("private_take_any", PrivateTakeAny)
        else return 2;
#undef CUSTOM
        std::printf("%s after %llu iterations, %.1f s\n", rl::test_result_str(r.res), r.iterations,
                    r.seconds);
        return r.pass ? 0 : 1;
    }
    return model::run_suite("deque_relacy", cases, argc, argv);
}

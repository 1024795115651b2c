/*
 * dispatchTable_test.cpp --
 *
 *	Unit tests for DispatchTable (generic/ssDispatchTable.h), the
 *	dispatcher's bookkeeping: the ready queue (oldest ready first), the
 *	unacknowledged connection each worker holds, the pending queue that a
 *	dead worker's connection goes back to, and the protocol violations the
 *	dispatcher must detect. No sockets, no Tcl: Conn is an int, or a
 *	move-only std::unique_ptr<int> standing in for the owning descriptor.
 */

#include "ssDispatchTable.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <vector>

using socketserver::DispatchTable;
using socketserver::WorkerId;

namespace {

using IntTable = DispatchTable<int>;
using PtrTable = DispatchTable<std::unique_ptr<int>>;

/* Every connection ForEachConn visits, sorted. */
std::vector<int>
HeldConns(IntTable &table)
{
    std::vector<int> seen;
    table.ForEachConn([&seen](int &conn) { seen.push_back(conn); });
    std::sort(seen.begin(), seen.end());
    return seen;
}

} // namespace

/*
 * Workers and ids.
 */

TEST(DispatchTable, StartsEmpty)
{
    IntTable table;
    EXPECT_EQ(table.WorkerCount(), 0u);
    EXPECT_EQ(table.ReadyCount(), 0u);
    EXPECT_EQ(table.PendingCount(), 0u);
    EXPECT_FALSE(table.HasPending());
    EXPECT_TRUE(table.WorkerIds().empty());
    EXPECT_EQ(table.TakeReady(), std::nullopt);
    EXPECT_EQ(table.TakePending(), std::nullopt);
}

TEST(DispatchTable, AddWorkerIsKnownAndIdle)
{
    IntTable table;
    WorkerId id = table.AddWorker();
    EXPECT_TRUE(table.HasWorker(id));
    EXPECT_FALSE(table.HasWorker(id + 1));
    EXPECT_EQ(table.WorkerCount(), 1u);
    EXPECT_EQ(table.ReadyCount(), 0u);	/* Registered is not ready. */
    EXPECT_EQ(table.TakeReady(), std::nullopt);
}

TEST(DispatchTable, IdsAreNeverReused)
{
    IntTable table;
    std::set<WorkerId> seen;
    for (int round = 0; round < 50; round++) {
	WorkerId a = table.AddWorker();
	WorkerId b = table.AddWorker();
	EXPECT_TRUE(seen.insert(a).second) << "id " << a << " reused";
	EXPECT_TRUE(seen.insert(b).second) << "id " << b << " reused";
	table.RemoveWorker(a);
	table.RemoveWorker(b);
	EXPECT_FALSE(table.HasWorker(a));
    }
    EXPECT_EQ(table.WorkerCount(), 0u);
    EXPECT_EQ(seen.size(), 100u);
}

TEST(DispatchTable, WorkerIdsListsEveryWorkerOnce)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    WorkerId b = table.AddWorker();
    WorkerId c = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(b));	/* State does not matter. */
    std::vector<WorkerId> ids = table.WorkerIds();
    std::sort(ids.begin(), ids.end());
    std::vector<WorkerId> expected{a, b, c};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(ids, expected);

    table.RemoveWorker(b);
    ids = table.WorkerIds();
    std::sort(ids.begin(), ids.end());
    expected = {a, c};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(ids, expected);
    EXPECT_EQ(table.WorkerCount(), 2u);
}

/*
 * The ready queue.
 */

TEST(DispatchTable, TakeReadyWithNoneReadyIsNullopt)
{
    IntTable table;
    table.AddWorker();
    table.AddWorker();
    EXPECT_EQ(table.TakeReady(), std::nullopt);
    EXPECT_EQ(table.ReadyCount(), 0u);
}

TEST(DispatchTable, TakeReadyGivesOldestReadyFirst)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    WorkerId b = table.AddWorker();
    WorkerId c = table.AddWorker();
    /* Ready in an order other than registration order. */
    ASSERT_TRUE(table.MarkReady(c));
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_TRUE(table.MarkReady(b));
    EXPECT_EQ(table.ReadyCount(), 3u);
    EXPECT_EQ(table.TakeReady(), std::optional<WorkerId>(c));
    EXPECT_EQ(table.TakeReady(), std::optional<WorkerId>(a));
    EXPECT_EQ(table.TakeReady(), std::optional<WorkerId>(b));
    EXPECT_EQ(table.TakeReady(), std::nullopt);
    EXPECT_EQ(table.ReadyCount(), 0u);
}

TEST(DispatchTable, TakenWorkerIsNoLongerReady)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_EQ(table.TakeReady(), std::optional<WorkerId>(a));
    EXPECT_EQ(table.ReadyCount(), 0u);
    /* Taken but not sent anything (e.g. no connection after all): it may
     * say READY again. */
    EXPECT_TRUE(table.MarkReady(a));
    EXPECT_EQ(table.ReadyCount(), 1u);
}

TEST(DispatchTable, FairOverManyRounds)
{
    /*
     * Four workers that re-arm as soon as they ACK: each round, every
     * worker gets exactly one connection, and always in the same
     * rotation, whatever order they first said READY in.
     */
    IntTable table;
    std::vector<WorkerId> workers;
    for (int i = 0; i < 4; i++) {
	workers.push_back(table.AddWorker());
    }
    std::vector<WorkerId> firstOrder{workers[2], workers[0], workers[3],
	    workers[1]};
    for (WorkerId id : firstOrder) {
	ASSERT_TRUE(table.MarkReady(id));
    }

    std::map<WorkerId, int> served;
    int conn = 0;
    for (int round = 0; round < 100; round++) {
	for (size_t i = 0; i < workers.size(); i++) {
	    std::optional<WorkerId> id = table.TakeReady();
	    ASSERT_TRUE(id.has_value());
	    EXPECT_EQ(*id, firstOrder[i]) << "round " << round;
	    table.Sent(*id, ++conn);
	    std::optional<int> acked = table.Ack(*id);
	    ASSERT_TRUE(acked.has_value());
	    EXPECT_EQ(*acked, conn);
	    ASSERT_TRUE(table.MarkReady(*id));	/* Back of the queue. */
	    served[*id]++;
	}
    }
    for (WorkerId id : workers) {
	EXPECT_EQ(served[id], 100) << "worker " << id;
    }
    EXPECT_EQ(table.ReadyCount(), 4u);
}

TEST(DispatchTable, ReArmedWorkerGoesBehindThoseAlreadyWaiting)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    WorkerId b = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_TRUE(table.MarkReady(b));
    ASSERT_EQ(table.TakeReady(), std::optional<WorkerId>(a));
    table.Sent(a, 1);
    ASSERT_EQ(table.Ack(a), std::optional<int>(1));
    ASSERT_TRUE(table.MarkReady(a));
    EXPECT_EQ(table.TakeReady(), std::optional<WorkerId>(b));
    EXPECT_EQ(table.TakeReady(), std::optional<WorkerId>(a));
}

/*
 * Sent and Ack.
 */

TEST(DispatchTable, AckReturnsTheConnectionSent)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_EQ(table.TakeReady(), std::optional<WorkerId>(a));
    table.Sent(a, 42);
    EXPECT_EQ(HeldConns(table), std::vector<int>{42});
    EXPECT_EQ(table.Ack(a), std::optional<int>(42));
    /* Acknowledged: the table no longer holds it. */
    EXPECT_TRUE(HeldConns(table).empty());
    EXPECT_EQ(table.PendingCount(), 0u);
}

TEST(DispatchTable, MoveOnlyConnectionTravelsIntact)
{
    PtrTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_EQ(table.TakeReady(), std::optional<WorkerId>(a));
    auto conn = std::make_unique<int>(7);
    int *raw = conn.get();
    table.Sent(a, std::move(conn));
    std::optional<std::unique_ptr<int>> acked = table.Ack(a);
    ASSERT_TRUE(acked.has_value());
    ASSERT_TRUE(*acked);
    EXPECT_EQ(acked->get(), raw);	/* The same object, not a copy. */
    EXPECT_EQ(**acked, 7);
}

TEST(DispatchTable, AckTwiceIsAViolation)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_TRUE(table.TakeReady().has_value());
    table.Sent(a, 5);
    ASSERT_EQ(table.Ack(a), std::optional<int>(5));
    EXPECT_EQ(table.Ack(a), std::nullopt);
}

TEST(DispatchTable, AckWithNothingOutstandingIsAViolation)
{
    IntTable table;
    WorkerId idle = table.AddWorker();
    WorkerId ready = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(ready));
    EXPECT_EQ(table.Ack(idle), std::nullopt);
    EXPECT_EQ(table.Ack(ready), std::nullopt);
    /* The violation changed nothing. */
    EXPECT_EQ(table.ReadyCount(), 1u);
    EXPECT_EQ(table.WorkerCount(), 2u);
}

/*
 * Protocol violations on READY, and unknown workers.
 */

TEST(DispatchTable, ReadyTwiceIsAViolation)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(a));
    EXPECT_FALSE(table.MarkReady(a));
    /* Still queued once only. */
    EXPECT_EQ(table.ReadyCount(), 1u);
    EXPECT_EQ(table.TakeReady(), std::optional<WorkerId>(a));
    EXPECT_EQ(table.TakeReady(), std::nullopt);
}

TEST(DispatchTable, ReadyWhileHoldingUnackedConnectionIsAViolation)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_TRUE(table.TakeReady().has_value());
    table.Sent(a, 9);
    EXPECT_FALSE(table.MarkReady(a));
    EXPECT_EQ(table.ReadyCount(), 0u);
    /* After the ACK it is allowed again. */
    ASSERT_EQ(table.Ack(a), std::optional<int>(9));
    EXPECT_TRUE(table.MarkReady(a));
}

TEST(DispatchTable, UnknownWorkerIsRejectedEverywhere)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    WorkerId unknown = a + 1000;
    EXPECT_FALSE(table.MarkReady(unknown));
    EXPECT_EQ(table.Ack(unknown), std::nullopt);
    EXPECT_FALSE(table.RemoveWorker(unknown));
    EXPECT_EQ(table.WorkerCount(), 1u);
    EXPECT_EQ(table.ReadyCount(), 0u);
}

TEST(DispatchTable, RemovedWorkerIsUnknown)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    table.RemoveWorker(a);
    EXPECT_FALSE(table.HasWorker(a));
    EXPECT_FALSE(table.MarkReady(a));
    EXPECT_EQ(table.Ack(a), std::nullopt);
    EXPECT_FALSE(table.RemoveWorker(a));	/* Second removal: nothing. */
}

/*
 * RemoveWorker and the pending queue.
 */

TEST(DispatchTable, RemoveIdleWorkerRequeuesNothing)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    EXPECT_FALSE(table.RemoveWorker(a));
    EXPECT_EQ(table.WorkerCount(), 0u);
    EXPECT_EQ(table.PendingCount(), 0u);
}

TEST(DispatchTable, RemoveReadyWorkerLeavesTheReadyQueue)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    WorkerId b = table.AddWorker();
    WorkerId c = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_TRUE(table.MarkReady(b));
    ASSERT_TRUE(table.MarkReady(c));
    EXPECT_FALSE(table.RemoveWorker(b));	/* Held no connection. */
    EXPECT_EQ(table.ReadyCount(), 2u);
    EXPECT_EQ(table.PendingCount(), 0u);
    EXPECT_EQ(table.TakeReady(), std::optional<WorkerId>(a));
    EXPECT_EQ(table.TakeReady(), std::optional<WorkerId>(c));
    EXPECT_EQ(table.TakeReady(), std::nullopt);
}

TEST(DispatchTable, RemoveWorkerHoldingUnackedPutsItAtFrontOfPending)
{
    IntTable table;
    table.PushPending(100);
    table.PushPending(101);
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_TRUE(table.TakeReady().has_value());
    table.Sent(a, 7);

    EXPECT_TRUE(table.RemoveWorker(a));
    EXPECT_FALSE(table.HasWorker(a));
    EXPECT_EQ(table.PendingCount(), 3u);
    /* The dead worker's connection has waited longest: it goes first. */
    EXPECT_EQ(table.TakePending(), std::optional<int>(7));
    EXPECT_EQ(table.TakePending(), std::optional<int>(100));
    EXPECT_EQ(table.TakePending(), std::optional<int>(101));
    EXPECT_EQ(table.TakePending(), std::nullopt);
}

TEST(DispatchTable, RequeuedMoveOnlyConnectionIsTheSameObject)
{
    PtrTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_TRUE(table.TakeReady().has_value());
    auto conn = std::make_unique<int>(3);
    int *raw = conn.get();
    table.Sent(a, std::move(conn));
    EXPECT_TRUE(table.RemoveWorker(a));
    std::optional<std::unique_ptr<int>> again = table.TakePending();
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->get(), raw);
    /* Re-sent to another worker, then acknowledged. */
    WorkerId b = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(b));
    ASSERT_EQ(table.TakeReady(), std::optional<WorkerId>(b));
    table.Sent(b, std::move(*again));
    std::optional<std::unique_ptr<int>> acked = table.Ack(b);
    ASSERT_TRUE(acked.has_value());
    EXPECT_EQ(acked->get(), raw);
}

TEST(DispatchTable, TwoDeadWorkersBothRequeuedMostRecentFirst)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    WorkerId b = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_TRUE(table.MarkReady(b));
    table.Sent(*table.TakeReady(), 1);	/* To a. */
    table.Sent(*table.TakeReady(), 2);	/* To b. */
    EXPECT_TRUE(table.RemoveWorker(a));
    EXPECT_TRUE(table.RemoveWorker(b));
    /* Each removal pushes to the front. */
    EXPECT_EQ(table.TakePending(), std::optional<int>(2));
    EXPECT_EQ(table.TakePending(), std::optional<int>(1));
    EXPECT_FALSE(table.HasPending());
}

TEST(DispatchTable, TakePendingIsFirstInFirstOut)
{
    IntTable table;
    for (int i = 1; i <= 5; i++) {
	table.PushPending(i);
    }
    EXPECT_TRUE(table.HasPending());
    EXPECT_EQ(table.PendingCount(), 5u);
    for (int i = 1; i <= 5; i++) {
	EXPECT_EQ(table.TakePending(), std::optional<int>(i));
    }
    EXPECT_FALSE(table.HasPending());
    EXPECT_EQ(table.TakePending(), std::nullopt);
}

TEST(DispatchTable, ForEachConnVisitsUnackedAndPending)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    WorkerId b = table.AddWorker();
    WorkerId idle = table.AddWorker();
    (void) idle;
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_TRUE(table.MarkReady(b));
    table.Sent(*table.TakeReady(), 10);
    table.Sent(*table.TakeReady(), 20);
    table.PushPending(30);
    table.PushPending(40);
    EXPECT_EQ(HeldConns(table), (std::vector<int>{10, 20, 30, 40}));

    /* After one ACK and one TakePending, only the rest are held. */
    ASSERT_EQ(table.Ack(a), std::optional<int>(10));
    ASSERT_EQ(table.TakePending(), std::optional<int>(30));
    EXPECT_EQ(HeldConns(table), (std::vector<int>{20, 40}));
}

TEST(DispatchTable, ForEachConnCanReachMoveOnlyConnections)
{
    /* The server's shutdown uses this to close every fd it still holds. */
    PtrTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.MarkReady(a));
    table.Sent(*table.TakeReady(), std::make_unique<int>(1));
    table.PushPending(std::make_unique<int>(2));
    int visited = 0;
    table.ForEachConn([&visited](std::unique_ptr<int> &conn) {
	ASSERT_TRUE(conn);
	visited++;
	conn.reset();
    });
    EXPECT_EQ(visited, 2);
}

TEST(DispatchTable, CountsFollowALifecycle)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    WorkerId b = table.AddWorker();
    EXPECT_EQ(table.WorkerCount(), 2u);
    ASSERT_TRUE(table.MarkReady(a));
    ASSERT_TRUE(table.MarkReady(b));
    EXPECT_EQ(table.ReadyCount(), 2u);
    table.Sent(*table.TakeReady(), 1);
    EXPECT_EQ(table.ReadyCount(), 1u);
    EXPECT_TRUE(table.RemoveWorker(a));
    EXPECT_EQ(table.WorkerCount(), 1u);
    EXPECT_EQ(table.PendingCount(), 1u);
    EXPECT_TRUE(table.HasPending());
    /* The pending connection goes to b. */
    std::optional<WorkerId> next = table.TakeReady();
    ASSERT_EQ(next, std::optional<WorkerId>(b));
    table.Sent(b, *table.TakePending());
    EXPECT_EQ(table.PendingCount(), 0u);
    EXPECT_EQ(table.ReadyCount(), 0u);
    EXPECT_EQ(table.Ack(b), std::optional<int>(1));
}

/*
 * Credits: persistent workers (`client -concurrency N`).
 */

TEST(DispatchTable, CreditGivesThatManySends)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.SetCredit(a, 3, 0));
    EXPECT_EQ(table.TotalCredits(), 3u);
    EXPECT_EQ(table.ReadyCount(), 1u);
    for (int conn = 1; conn <= 3; conn++) {
	ASSERT_EQ(table.TakeReady(), std::optional<WorkerId>(a));
	table.Sent(a, conn);
    }
    EXPECT_EQ(table.TakeReady(), std::nullopt);	/* Backpressure. */
    EXPECT_EQ(table.TotalCredits(), 0u);
    EXPECT_EQ(table.ReadyCount(), 0u);
    /* ACKs acknowledge in the order sent, and give no credit. */
    EXPECT_EQ(table.Ack(a), std::optional<int>(1));
    EXPECT_EQ(table.Ack(a), std::optional<int>(2));
    EXPECT_EQ(table.Ack(a), std::optional<int>(3));
    EXPECT_EQ(table.Ack(a), std::nullopt);
    EXPECT_EQ(table.TotalCredits(), 0u);
}

TEST(DispatchTable, CreditIsRoomBeyondWhatWasAcknowledged)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.SetCredit(a, 3, 0));
    table.Sent(*table.TakeReady(), 1);
    table.Sent(*table.TakeReady(), 2);
    ASSERT_EQ(table.Ack(a), std::optional<int>(1));
    /*
     * The worker has taken 1, closed it, and says room 3: connection 2 is
     * still on its way, so only 2 more may be sent.
     */
    ASSERT_TRUE(table.SetCredit(a, 3, 0));
    EXPECT_EQ(table.TotalCredits(), 2u);
    /* Room below what is on the way gives nothing, never a debt. */
    ASSERT_TRUE(table.SetCredit(a, 0, 1));
    EXPECT_EQ(table.TotalCredits(), 0u);
    EXPECT_EQ(table.TakeReady(), std::nullopt);
}

TEST(DispatchTable, MostRoomFirstThenLongestReady)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    WorkerId b = table.AddWorker();
    WorkerId c = table.AddWorker();
    ASSERT_TRUE(table.SetCredit(a, 2, 0));
    ASSERT_TRUE(table.SetCredit(b, 3, 0));
    ASSERT_TRUE(table.MarkReady(c));	/* One-shot: one credit. */
    std::vector<WorkerId> order;
    while (std::optional<WorkerId> id = table.TakeReady()) {
	order.push_back(*id);
	table.Sent(*id, 0);
    }
    EXPECT_EQ(order, (std::vector<WorkerId>{b, a, b, a, b, c}));
}

TEST(DispatchTable, HeldCountsAcknowledgedUntilTheNextCredit)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    WorkerId oneShot = table.AddWorker();
    ASSERT_TRUE(table.SetCredit(a, 2, 0));
    ASSERT_TRUE(table.MarkReady(oneShot));
    for (int i = 0; i < 3; i++) {
	WorkerId id = *table.TakeReady();
	table.Sent(id, i);
	ASSERT_TRUE(table.Ack(id));
    }
    EXPECT_EQ(table.HeldCount(), 2u);	/* One-shot workers do not say. */
    ASSERT_TRUE(table.SetCredit(a, 1, 1));	/* One closed. */
    EXPECT_EQ(table.HeldCount(), 1u);
    EXPECT_FALSE(table.RemoveWorker(a));
    EXPECT_EQ(table.HeldCount(), 0u);
}

TEST(DispatchTable, ADeadWorkersUnacknowledgedGoBackInOrder)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.SetCredit(a, 4, 0));
    for (int conn = 1; conn <= 3; conn++) {
	table.Sent(*table.TakeReady(), conn);
    }
    ASSERT_EQ(table.Ack(a), std::optional<int>(1));
    table.PushPending(9);
    EXPECT_TRUE(table.RemoveWorker(a));
    EXPECT_EQ(table.TotalCredits(), 0u);
    EXPECT_EQ(table.TakePending(), std::optional<int>(2));
    EXPECT_EQ(table.TakePending(), std::optional<int>(3));
    EXPECT_EQ(table.TakePending(), std::optional<int>(9));
}

TEST(DispatchTable, ReadyIsAViolationForAWorkerWithCredit)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.SetCredit(a, 2, 0));
    EXPECT_FALSE(table.MarkReady(a));
    EXPECT_FALSE(table.SetCredit(a + 100, 1, 0));	/* Unknown worker. */
}

TEST(DispatchTable, AtMostkMaxInFlightTravelUnacknowledged)
{
    IntTable table;
    WorkerId a = table.AddWorker();
    ASSERT_TRUE(table.SetCredit(a, 1000000, 0));
    EXPECT_EQ(table.TotalCredits(), socketserver::kMaxInFlight);
    uint64_t sent = 0;
    while (std::optional<WorkerId> id = table.TakeReady()) {
	table.Sent(*id, static_cast<int>(sent++));
    }
    EXPECT_EQ(sent, socketserver::kMaxInFlight);
    ASSERT_TRUE(table.Ack(a));		/* One taken: one more may go. */
    EXPECT_EQ(table.TakeReady(), std::optional<WorkerId>(a));
}

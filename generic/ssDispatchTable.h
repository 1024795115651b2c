/*
 * ssDispatchTable.h --
 *
 *	The dispatcher's bookkeeping, with no sockets and no Tcl in it: which
 *	workers exist, which can take a connection now, which connections
 *	each has been sent and not yet acknowledged, and the connections waiting
 *	for a worker because theirs died. Conn is any movable type (an owning
 *	descriptor in the server, a plain value in the unit tests).
 *
 *	Each worker has credits: how many more connections it may be sent.
 *	READY (one-shot) gives one, and is a protocol violation while the
 *	worker still has credit or holds an unacknowledged connection. CREDIT
 *	(persistent, `-concurrency`) says how much room the worker has beyond
 *	what it acknowledged: its credits become that room minus what was
 *	sent to it since (unacknowledged). ACK with nothing unacknowledged is
 *	a violation. The next connection goes to the worker with the most
 *	credits, and among equals to the one that has had credit longest.
 */

#ifndef SS_DISPATCH_TABLE_H
#define SS_DISPATCH_TABLE_H

#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace socketserver {

using WorkerId = uint64_t;

/* At most this many connections travel to one worker unacknowledged. */
constexpr uint64_t kMaxInFlight = 64;

template <class Conn>
class DispatchTable {
public:
    /* Adds a worker, idle. Returns its id (never reused). */
    WorkerId AddWorker() {
	WorkerId id = nextId_++;
	workers_.emplace(id, Worker{});
	return id;
    }

    bool HasWorker(WorkerId id) const { return workers_.count(id) != 0; }
    size_t WorkerCount() const { return workers_.size(); }
    size_t ReadyCount() const { return ready_.size(); }	/* With credit. */
    uint64_t TotalCredits() const { return totalCredits_; }	/* Available. */
    uint64_t HeldCount() const { return totalHeld_; }
    size_t PendingCount() const { return pending_.size(); }
    bool HasPending() const { return !pending_.empty(); }

    /*
     * READY from a worker: one credit. Returns false on a protocol
     * violation (unknown worker, credit left, or still holding a
     * connection).
     */
    bool MarkReady(WorkerId id) {
	auto it = workers_.find(id);
	if (it == workers_.end() || it->second.credits > 0
		|| !it->second.unacked.empty()) {
	    return false;
	}
	Change(id, it->second, [](Worker &w) { w.credits = 1; });
	return true;
    }

    /*
     * CREDIT from a worker: room for that many beyond what it has
     * acknowledged, open channels held. Returns false for an unknown
     * worker. The worker counts as persistent from now on: its ACKs add
     * to HeldCount until its next CREDIT says how many it still holds.
     */
    bool SetCredit(WorkerId id, uint32_t room, uint32_t open) {
	auto it = workers_.find(id);
	if (it == workers_.end()) {
	    return false;
	}
	Worker &w = it->second;
	Change(id, w, [room](Worker &v) {
	    uint64_t inFlight = v.unacked.size();
	    v.credits = room > inFlight ? room - inFlight : 0;
	});
	totalHeld_ += open;
	totalHeld_ -= w.held;
	w.held = open;
	w.persistent = true;
	return true;
    }

    /*
     * Takes one credit from the worker with the most (the longest ready
     * among equals); the caller then sends it a connection and calls Sent
     * (or, if the send failed, RemoveWorker).
     */
    std::optional<WorkerId> TakeReady() {
	if (ready_.empty()) {
	    return std::nullopt;
	}
	WorkerId id = std::get<2>(*ready_.begin());
	Change(id, workers_.at(id), [](Worker &w) { w.credits--; });
	return id;
    }

    /* Records conn as sent to id and not yet acknowledged. */
    void Sent(WorkerId id, Conn conn) {
	Change(id, workers_.at(id), [&conn](Worker &w) {
	    w.unacked.push_back(std::move(conn));
	});
    }

    /*
     * ACK from a worker, for the oldest connection sent to it. Returns
     * that connection (the caller drops its copy), or nullopt on a
     * protocol violation.
     */
    std::optional<Conn> Ack(WorkerId id) {
	auto it = workers_.find(id);
	if (it == workers_.end() || it->second.unacked.empty()) {
	    return std::nullopt;
	}
	Worker &w = it->second;
	std::optional<Conn> conn;
	Change(id, w, [&conn](Worker &v) {
	    conn = std::move(v.unacked.front());
	    v.unacked.pop_front();
	});
	if (w.persistent) {
	    w.held++;
	    totalHeld_++;
	}
	return conn;
    }

    /*
     * A worker is gone (its channel closed, or it broke the protocol).
     * Its unacknowledged connections, if any, go to the front of the
     * pending queue, in the order they were sent. Returns true if any did.
     */
    bool RemoveWorker(WorkerId id) {
	auto it = workers_.find(id);
	if (it == workers_.end()) {
	    return false;
	}
	Worker &w = it->second;
	Unlist(id, w);
	totalHeld_ -= w.held;
	bool requeued = !w.unacked.empty();
	while (!w.unacked.empty()) {
	    pending_.push_front(std::move(w.unacked.back()));
	    w.unacked.pop_back();
	}
	workers_.erase(it);
	return requeued;
    }

    /* A connection that found no worker able to take it. */
    void PushPending(Conn conn) { pending_.push_back(std::move(conn)); }

    std::optional<Conn> TakePending() {
	if (pending_.empty()) {
	    return std::nullopt;
	}
	std::optional<Conn> conn = std::move(pending_.front());
	pending_.pop_front();
	return conn;
    }

    /* Every worker id, in no particular order. */
    std::vector<WorkerId> WorkerIds() const {
	std::vector<WorkerId> ids;
	ids.reserve(workers_.size());
	for (const auto &entry : workers_) {
	    ids.push_back(entry.first);
	}
	return ids;
    }

    /* Visits every connection held (unacked and pending). */
    template <class F> void ForEachConn(F f) {
	for (auto &entry : workers_) {
	    for (auto &conn : entry.second.unacked) {
		f(conn);
	    }
	}
	for (auto &conn : pending_) {
	    f(conn);
	}
    }

private:
    struct Worker {
	uint64_t credits = 0;
	uint64_t since = 0;	/* When it last became sendable. */
	uint64_t held = 0;	/* Persistent: acknowledged, still open. */
	uint64_t listed = 0;	/* Available() as counted in ready_, or 0. */
	bool persistent = false;
	std::deque<Conn> unacked;	/* Oldest first. */
    };
    /* Most credits first, then longest ready: (-credits, since, id). */
    using ReadyKey = std::tuple<int64_t, uint64_t, WorkerId>;
    static ReadyKey KeyOf(WorkerId id, const Worker &w) {
	return ReadyKey(-static_cast<int64_t>(w.credits), w.since, id);
    }

    /*
     * What a worker can be sent now: its credits, but never more than
     * kMaxInFlight unacknowledged at once, so its channel's queue cannot
     * fill however large its room.
     */
    static uint64_t Available(const Worker &w) {
	uint64_t sent = w.unacked.size();
	uint64_t window = sent < kMaxInFlight ? kMaxInFlight - sent : 0;
	return w.credits < window ? w.credits : window;
    }
    void Unlist(WorkerId id, Worker &w) {
	if (w.listed) {
	    ready_.erase(KeyOf(id, w));
	    totalCredits_ -= w.listed;
	    w.listed = 0;
	}
    }
    /*
     * Applies change to a worker, keeping ready_ and the total in step; a
     * worker that could take nothing before and can now is the newest
     * ready.
     */
    template <class F> void Change(WorkerId id, Worker &w, F change) {
	bool was = w.listed != 0;
	Unlist(id, w);
	change(w);
	uint64_t available = Available(w);
	if (available > 0) {
	    if (!was) {
		w.since = nextSince_++;
	    }
	    w.listed = available;
	    totalCredits_ += available;
	    ready_.insert(KeyOf(id, w));
	}
    }

    std::unordered_map<WorkerId, Worker> workers_;
    std::set<ReadyKey> ready_;
    std::deque<Conn> pending_;
    uint64_t totalCredits_ = 0;
    uint64_t totalHeld_ = 0;
    uint64_t nextSince_ = 1;
    WorkerId nextId_ = 1;
};

} // namespace socketserver

#endif /* SS_DISPATCH_TABLE_H */

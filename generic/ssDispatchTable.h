/*
 * ssDispatchTable.h --
 *
 *	The dispatcher's bookkeeping, with no sockets and no Tcl in it: which
 *	workers exist, which are ready (oldest first), which connection each
 *	has been sent and not yet acknowledged, and the connections waiting
 *	for a worker because theirs died. Conn is any movable type (an owning
 *	descriptor in the server, a plain value in the unit tests).
 *
 *	Invariant: a worker is either ready, or holds at most one unacked
 *	connection, or is idle (neither). READY while holding a connection,
 *	ACK with none, or READY twice is a protocol violation.
 */

#ifndef SS_DISPATCH_TABLE_H
#define SS_DISPATCH_TABLE_H

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <vector>

namespace socketserver {

using WorkerId = uint64_t;

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
    size_t ReadyCount() const { return ready_.size(); }
    size_t PendingCount() const { return pending_.size(); }
    bool HasPending() const { return !pending_.empty(); }

    /*
     * READY from a worker. Returns false on a protocol violation (unknown
     * worker, already ready, or still holding a connection).
     */
    bool MarkReady(WorkerId id) {
	auto it = workers_.find(id);
	if (it == workers_.end() || it->second.ready || it->second.unacked) {
	    return false;
	}
	it->second.ready = true;
	ready_.push_back(id);
	return true;
    }

    /*
     * Takes the worker that has been ready longest off the ready queue;
     * the caller then sends it a connection and calls Sent (or, if the
     * send failed, RemoveWorker).
     */
    std::optional<WorkerId> TakeReady() {
	if (ready_.empty()) {
	    return std::nullopt;
	}
	WorkerId id = ready_.front();
	ready_.pop_front();
	workers_.at(id).ready = false;
	return id;
    }

    /* Records conn as sent to id and not yet acknowledged. */
    void Sent(WorkerId id, Conn conn) {
	workers_.at(id).unacked.emplace(std::move(conn));
    }

    /*
     * ACK from a worker. Returns the acknowledged connection (the caller
     * drops its copy), or nullopt on a protocol violation.
     */
    std::optional<Conn> Ack(WorkerId id) {
	auto it = workers_.find(id);
	if (it == workers_.end() || !it->second.unacked) {
	    return std::nullopt;
	}
	std::optional<Conn> conn = std::move(it->second.unacked);
	it->second.unacked.reset();
	return conn;
    }

    /*
     * A worker is gone (its channel closed, or it broke the protocol).
     * Its unacknowledged connection, if any, goes to the front of the
     * pending queue. Returns true if one did.
     */
    bool RemoveWorker(WorkerId id) {
	auto it = workers_.find(id);
	if (it == workers_.end()) {
	    return false;
	}
	if (it->second.ready) {
	    ready_.erase(std::find(ready_.begin(), ready_.end(), id));
	}
	bool requeued = false;
	if (it->second.unacked) {
	    pending_.push_front(std::move(*it->second.unacked));
	    requeued = true;
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
	    if (entry.second.unacked) {
		f(*entry.second.unacked);
	    }
	}
	for (auto &conn : pending_) {
	    f(conn);
	}
    }

private:
    struct Worker {
	bool ready = false;
	std::optional<Conn> unacked;
    };
    std::unordered_map<WorkerId, Worker> workers_;
    std::deque<WorkerId> ready_;
    std::deque<Conn> pending_;
    WorkerId nextId_ = 1;
};

} // namespace socketserver

#endif /* SS_DISPATCH_TABLE_H */

/*
 * ssHandshakes.h --
 *
 *	Connections the dispatcher has accepted but cannot use until they
 *	have said something first: a client connection's PROXY header, and
 *	a joining process's JOIN on the control socket. Each waits, watched
 *	in the dispatcher's poll set, until what it must say is whole, it
 *	breaks the rules, or its deadline passes; at most a fixed number
 *	wait at once. What is finished goes back to the owner through a
 *	Sink, so this class knows nothing of the Server, its workers or its
 *	counters.
 */

#ifndef SS_HANDSHAKES_H
#define SS_HANDSHAKES_H

#include "ssPlatform.h"

#include <chrono>
#include <cstdint>
#include <iterator>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

namespace socketserver {

/* An accepted connection on its way to a worker. */
struct PendingConn {
    UniqueFd fd;
    std::string peer;		/* "address port" */
    int sends = 0;
};

class Handshakes {
public:
    using Clock = std::chrono::steady_clock;

    /* Why a waiting connection was closed. */
    enum class Failure {
	BadHeader,	/* Malformed PROXY header. */
	EndedHeader,	/* Closed before its header's end. */
	LateHeader,	/* Its -proxytimeout passed. */
	DroppedHeader,	/* The oldest wait, closed to make room. */
	UnwatchedHeader,	/* The poll set could not take it. */
	BadJoin,	/* Not a JOIN, or a descriptor passed with it. */
	LateJoin,	/* It said nothing in time. */
	RefusedJoin,	/* Its credential is not the server's. */
    };

    /* What the owner is given back. */
    class Sink {
    public:
	/* A connection whose header is whole; peer is the original
	 * client's when the header names one. */
	virtual void HeaderRead(PendingConn conn) = 0;
	/* A process that said JOIN, was allowed and told WELCOME:
	 * channel is its private channel now. */
	virtual void Joined(UniqueFd channel, int pid) = 0;
	/* A wait closed for why; peer is the connection's address (a
	 * header wait's), empty for a JOIN wait. */
	virtual void Failed(Failure why, const std::string &peer) = 0;
    protected:
	~Sink() = default;
    };

    struct Limits {
	std::chrono::milliseconds headerTimeout{5000};
	size_t maxHeaderWaits = 256;
	std::chrono::milliseconds joinTimeout{5000};
	size_t maxJoinWaits = 64;
    };

    /*
     * The poll tokens: a waiting connection is watched with its kind's
     * tag OR its descriptor; the owner routes each back to ReadHeader or
     * ReadJoin. control decides a JOIN's credential.
     */
    struct Tags {
	uint64_t header = 0;
	uint64_t join = 0;
    };

    Handshakes(Sink &sink, Poller &poller, const ControlEndpoint &control,
	    const Limits &limits, const Tags &tags)
	: sink_(sink), poller_(poller), control_(control), limits_(limits),
	  tags_(tags) {}
    Handshakes(const Handshakes &) = delete;
    Handshakes &operator=(const Handshakes &) = delete;

    /*
     * Starts waiting for conn's PROXY header. When limits.maxHeaderWaits
     * are waiting already, the oldest of them is closed first (Failed
     * DroppedHeader): silent connections can never stop new ones being
     * taken in, and what they hold stays bounded.
     */
    void AwaitHeader(PendingConn conn);

    /*
     * Starts waiting for a control connection's JOIN. Call only while
     * HasRoomToJoin(); the owner leaves the rest in the listen backlog.
     */
    void AwaitJoin(UniqueFd channel);
    bool HasRoomToJoin() const { return joins_.Size() < limits_.maxJoinWaits; }

    /* fd, watched with a tag, is readable. */
    void ReadHeader(int fd);
    void ReadJoin(int fd);

    /* Closes every wait whose deadline is at or before now. */
    void Expire(Clock::time_point now);

    /* The earliest deadline, or Clock::time_point::max() for none. */
    Clock::time_point NextDeadline() const;

    size_t HeaderWaits() const { return headers_.Size(); }
    size_t JoinWaits() const { return joins_.Size(); }

    /* A forked child's copies: closed, without touching the poll set. */
    void CloseCopies();

private:
    /*
     * Waits of one kind, oldest first. All of a kind have the same
     * timeout, so the oldest is also the first due.
     */
    template <class T>
    class Queue {
    public:
	struct Entry {
	    int fd;
	    Clock::time_point deadline;
	    T item;
	};
	size_t Size() const { return order_.size(); }
	bool Empty() const { return order_.empty(); }
	Entry &Oldest() { return order_.front(); }
	const Entry &Oldest() const { return order_.front(); }
	void Push(Entry entry) {
	    int fd = entry.fd;
	    order_.push_back(std::move(entry));
	    byFd_[fd] = std::prev(order_.end());
	}
	Entry *Find(int fd) {
	    auto it = byFd_.find(fd);
	    return it == byFd_.end() ? nullptr : &*it->second;
	}
	/* Removes fd's entry and returns it. fd must be waiting. */
	Entry Take(int fd) {
	    auto it = byFd_.at(fd);
	    Entry entry = std::move(*it);
	    order_.erase(it);
	    byFd_.erase(fd);
	    return entry;
	}
	template <class F> void ForEach(F f) {
	    for (Entry &e : order_) {
		f(e);
	    }
	}
    private:
	std::list<Entry> order_;
	std::unordered_map<int, typename std::list<Entry>::iterator> byFd_;
    };

    /* A connection whose PROXY header has not fully arrived. */
    struct HeaderWait {
	PendingConn conn;
	std::string got;	/* Header bytes already read. */
    };

    PendingConn TakeHeaderWait(int fd);
    UniqueFd TakeJoinWait(int fd);

    Sink &sink_;
    Poller &poller_;
    const ControlEndpoint &control_;
    Limits limits_;
    Tags tags_;
    Queue<HeaderWait> headers_;
    Queue<UniqueFd> joins_;
};

} // namespace socketserver

#endif /* SS_HANDSHAKES_H */

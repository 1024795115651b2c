/*
 * ssServer.h --
 *
 *	One listening server: its sockets, the registration socketpair, and
 *	the dispatcher thread that accepts connections only while a worker
 *	is ready and hands each to exactly one worker. The dispatcher never
 *	touches a Tcl interp.
 */

#ifndef SS_SERVER_H
#define SS_SERVER_H

#include "ssDispatchTable.h"
#include "ssPlatform.h"

#include <tcl.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace socketserver {

/*
 * Counters kept in a page shared with forked workers, so `info` in a
 * worker sees the dispatcher's live figures.
 */
struct Counters {
    std::atomic<uint64_t> accepted{0};	/* Taken from the listener. */
    std::atomic<uint64_t> dispatched{0};	/* CONN messages sent. */
    std::atomic<uint64_t> acked{0};	/* Receipts from workers. */
    std::atomic<uint64_t> redispatched{0};	/* Re-sent after a worker died. */
    std::atomic<uint64_t> acceptErrors{0};	/* accept() failures survived. */
    std::atomic<uint64_t> rejected{0};	/* Bad messages, peers dropped. */
    std::atomic<uint64_t> registered{0};	/* Workers ever registered. */
    std::atomic<uint32_t> workers{0};	/* Registered now. */
    std::atomic<uint32_t> ready{0};	/* Armed and idle now. */
    std::atomic<uint32_t> pending{0};	/* Waiting for a worker. */
};
static_assert(std::atomic<uint64_t>::is_always_lock_free,
	"counters are shared across processes");

/* An accepted connection on its way to a worker. */
struct PendingConn {
    UniqueFd fd;
    std::string peer;		/* "address port" */
    int sends = 0;
};

class Server {
    struct Token {};
public:
    explicit Server(Token) {}
    /*
     * Binds and listens now, in the calling thread, then starts the
     * dispatcher. Returns 0 with server set, or an errno / resolver
     * failure in error.
     */
    static int Open(const ListenSpec &spec, std::unique_ptr<Server> &server,
	    ListenError &error);

    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;
    ~Server();

    int Port() const { return port_; }
    const std::vector<std::string> &Addresses() const { return addresses_; }
    int OwnerPid() const { return ownerPid_; }
    bool OwnedHere() const { return ownerPid_ == ProcessId(); }
    int RegistrationFd() const { return regWorkerEnd_.Get(); }
    const Counters &Stats() const { return *counters_; }

    /*
     * Fork support, called from the process-wide fork handlers: the
     * parent holds mutex_ across fork() so the child sees a consistent
     * table, and the child closes every descriptor that belongs to the
     * dispatcher (listeners, held connections, private channels).
     */
    void LockForFork() { mutex_.lock(); }
    void UnlockAfterFork() { mutex_.unlock(); }
    void CloseDispatcherCopies();

private:
    static Tcl_ThreadCreateType ThreadMain(ClientData clientData);
    void Run();
    void ServiceOnce(const std::vector<int> &fds,
	    const std::vector<bool> &ready, const std::vector<WorkerId> &ids);
    void ReceiveRegistrations();
    void ServiceWorker(WorkerId id);
    void DropWorker(WorkerId id);
    void Dispatch(PendingConn conn);
    void DispatchPending();
    void AcceptFrom(int listenFd);
    void Publish();
    bool ListenersPaused() const;

    std::vector<Listener> listeners_;
    std::vector<std::string> addresses_;
    int port_ = 0;
    int ownerPid_ = 0;
    UniqueFd regDispatcherEnd_, regWorkerEnd_;
    Wakeup wakeup_;
    SharedPage page_;
    Counters *counters_ = nullptr;

    /* Owned by the dispatcher thread; guarded by mutex_ for fork only. */
    std::mutex mutex_;
    DispatchTable<PendingConn> table_;
    std::unordered_map<WorkerId, UniqueFd> workerFds_;
    std::chrono::steady_clock::time_point resumeAccept_{};

    std::atomic<bool> stopping_{false};
    Tcl_ThreadId thread_ = nullptr;
    bool threadStarted_ = false;
};

} // namespace socketserver

#endif /* SS_SERVER_H */

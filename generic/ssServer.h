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
#include "ssHandshakes.h"
#include "ssListen.h"
#include "ssPlatform.h"
#include "ssProxy.h"
#include "ssRateLimit.h"

#include <tcl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
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
    std::atomic<uint64_t> refused{0};	/* Control peers of another uid. */
    std::atomic<uint64_t> proxyErrors{0};	/* Bad, late, untrusted headers. */
    std::atomic<uint32_t> workers{0};	/* Registered now. */
    std::atomic<uint32_t> ready{0};	/* Armed and idle now. */
    std::atomic<uint32_t> pending{0};	/* Waiting for a worker. */
    std::atomic<uint64_t> credits{0};	/* Connections workers can take. */
    std::atomic<uint64_t> held{0};	/* Open in -concurrency workers. */
};
static_assert(std::atomic<uint64_t>::is_always_lock_free,
	"counters are shared across processes");

/*
 * Everything `server` can be asked for: where to listen (TCP by address
 * and port, a Unix-domain path, or an adopted descriptor), the control
 * socket that workers started on their own join through, and the PROXY
 * protocol.
 */
struct ServerOptions {
    ListenSpec tcp;
    int adoptFd = -1;
    std::string unixPath;
    int unixMode = 0666;
    std::string controlPath;
    int controlMode = 0600;
    std::vector<int> allowUids;		/* Empty: this process's uid. */
    bool proxyProtocol = false;
    AddressFilter proxyFrom;		/* Empty: loopback only. */
    bool proxyFromSet = false;
    int proxyTimeoutMs = 5000;
    /*
     * -log: told, from the dispatcher thread, why something was dropped
     * or refused (level "warning" or "error", and a sentence). It must
     * not touch an interp there: `server` queues it to its own thread.
     */
    std::function<void(const char *level, const std::string &message)> log;
};

/* What the dispatcher logs about, each kind rate-limited on its own. */
enum class LogKind { Accept, Proxy, Control, Registration, Worker };

/*
 * The server hands connections that must speak first (a PROXY header, a
 * JOIN) to its Handshakes, which gives them back finished through the
 * Sink interface.
 */
class Server final : private Handshakes::Sink {
    struct PassKey {};
public:
    Server(PassKey, const ServerOptions &options);
    /*
     * Binds and listens now, in the calling thread, then starts the
     * dispatcher. Returns 0 with server set, or an errno / resolver
     * failure in error.
     */
    static int Open(const ServerOptions &options,
	    std::unique_ptr<Server> &server, ListenError &error);

    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;
    ~Server();

    int Port() const { return port_; }		/* 0 for a Unix path. */
    const std::string &ControlPath() const { return options_.controlPath; }
    const std::vector<std::string> &Addresses() const { return addresses_; }
    int OwnerPid() const { return ownerPid_; }
    bool OwnedHere() const { return ownerPid_ == ProcessId(); }
    int RegistrationFd() const { return regWorkerEnd_.Get(); }
    bool ListensOn(int fd) const {
	for (const Listener &l : listeners_) {
	    if (l.fd.Get() == fd) {
		return true;
	    }
	}
	return false;
    }
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
    /*
     * What each descriptor in the poll set is: a token holds the source
     * in its top byte and, below, a worker id, a header-waiting
     * connection's fd, or a listener's index.
     */
    enum class Source : uint64_t { Wakeup, Registration, Worker, Header,
	    Control, Joining, Listener };
    static uint64_t Token(Source source, uint64_t value) {
	return (static_cast<uint64_t>(source) << 56) | value;
    }
    static Source SourceOf(uint64_t token) {
	return static_cast<Source>(token >> 56);
    }
    static uint64_t ValueOf(uint64_t token) {
	return token & ((uint64_t(1) << 56) - 1);
    }
    /* A registered worker's private channel and process. */
    struct WorkerChannel {
	UniqueFd fd;
	int pid = 0;
    };

    static Tcl_ThreadCreateType ThreadMain(ClientData clientData);
    int OpenSockets(ListenError &error);
    int OpenPoller();
    void ReleaseAdopted();
    void Run();
    int PrepareWait();
    void ServiceOnce(const std::vector<uint64_t> &tokens);
    void ReceiveRegistrations();
    void AcceptControl();
    void AddWorker(UniqueFd channel, int pid);
    void ServiceWorker(WorkerId id);
    void DropWorker(WorkerId id);
    void Dispatch(PendingConn conn);
    void DispatchPending();
    void AcceptFrom(const Listener &listener);
    enum class Accept { Accepted, Skip, Stop };
    Accept AcceptOne(int fd, UniqueFd &conn, std::string &peer);
    void PauseIntake();
    void Publish();
    void Log(LogKind kind, const char *level, std::string message);
    bool IntakePaused() const;
    bool CanAccept() const;

    /* Handshakes::Sink. */
    void HeaderRead(PendingConn conn) override;
    void Joined(UniqueFd channel, int pid) override;
    void Failed(Handshakes::Failure why, const std::string &peer) override;

    ServerOptions options_;
    std::vector<Listener> listeners_;
    ControlEndpoint control_;
    Poller poller_;
    bool listening_ = false;	/* Listeners are in the poll set. */
    bool registering_ = false;	/* The registration socket is. */
    bool joining_ = false;	/* The control socket is. */
    Handshakes handshakes_;
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
    std::unordered_map<WorkerId, WorkerChannel> workers_;
    std::chrono::steady_clock::time_point resumeAccept_{};
    RateLimiter<LogKind> logLimiter_;

    std::atomic<bool> stopping_{false};
    std::mutex startMutex_;		/* Open waits for the thread to run. */
    std::condition_variable started_;
    bool running_ = false;
    Tcl_ThreadId thread_ = nullptr;
    bool threadStarted_ = false;
};

} // namespace socketserver

#endif /* SS_SERVER_H */

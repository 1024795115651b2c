/*
 * ssRegistry.h --
 *
 *	The servers of this process, and the worker-side descriptors that a
 *	fork must not let a child share. This is the one piece of state that
 *	is process-wide rather than per-interp: a Tcl thread working for a
 *	server (Thread package) must find the server its process opened, and
 *	a child forked from that process must find what it inherited. One
 *	mutex guards it, and is held across fork() so a child never sees it
 *	half-changed.
 */

#ifndef SS_REGISTRY_H
#define SS_REGISTRY_H

#include "ssServer.h"

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace socketserver {

/*
 * How `client -port`, `info` and `close` name a server: by its port (a
 * Unix-domain listener's is 0) or by a Unix-domain listener's path;
 * neither: the oldest open server.
 */
struct ServerName {
    std::optional<int> port;
    std::string path;
    bool Given() const { return port || !path.empty(); }
};

/*
 * What `server` returns for a server, which names it as ServerName
 * reads it: its port, or the path of its Unix-domain listener.
 */
std::string NameOf(const Server &server);

class Registry {
public:
    /* The process's registry; installs the fork and exit hooks once. */
    static Registry &Get();

    std::mutex &Mutex() { return mutex_; }

    /* All of these expect the caller to hold Mutex(). */
    uint64_t Add(std::unique_ptr<Server> server);
    /*
     * The server name names, or nullptr with an error in interp: none
     * does, or a port that more than one server listens on.
     */
    Server *FindByName(Tcl_Interp *interp, const ServerName &name);
    Server *First();				/* The default: oldest open. */
    Server *FindListening(int fd);		/* Which server owns fd. */
    uint64_t IdOf(const Server *server) const;
    std::unique_ptr<Server> Remove(uint64_t id);

    /*
     * A worker's private-channel descriptor, with the thread that owns it.
     * In a forked child each is closed, or, for the thread that forked,
     * replaced by /dev/null so its file handler sees end-of-file and
     * registers anew instead of reading its parent's connections.
     */
    void TrackWorkerFd(UniqueFd *fd, Tcl_ThreadId owner);
    void UntrackWorkerFd(UniqueFd *fd);

    /* Stops this process's dispatchers; used at exit. */
    void CloseAll();

private:
    Registry() = default;
    static void PrepareFork();
    static void ParentAfterFork();
    static void ChildAfterFork();
    static void ExitHandler(ClientData clientData);

    struct Entry {
	uint64_t id;
	std::unique_ptr<Server> server;
    };
    struct TrackedFd {
	UniqueFd *fd;
	Tcl_ThreadId owner;
    };
    std::mutex mutex_;
    std::vector<Entry> servers_;
    std::vector<TrackedFd> workerFds_;
    uint64_t nextId_ = 1;
};

} // namespace socketserver

#endif /* SS_REGISTRY_H */

/*
 * ssRegistry.cpp --
 *
 *	The process's servers, and what fork() must do with them: the parent
 *	holds every lock across fork, the child closes the dispatcher's
 *	descriptors (listeners, held connections, private channels) so that a
 *	worker never keeps a client connection or a listening port alive by
 *	accident, and neuters the worker channels it inherited.
 */

#include "ssRegistry.h"

#include <algorithm>

namespace socketserver {

Registry &
Registry::Get()
{
    static Registry registry;
    static std::once_flag hooks;
    std::call_once(hooks, [] {
	InstallForkHandlers(PrepareFork, ParentAfterFork, ChildAfterFork);
	Tcl_CreateExitHandler(ExitHandler, nullptr);
    });
    return registry;
}

uint64_t
Registry::Add(std::unique_ptr<Server> server)
{
    uint64_t id = nextId_++;
    servers_.push_back(Entry{id, std::move(server)});
    return id;
}

std::string
NameOf(const Server &server)
{
    const std::vector<std::string> &addresses = server.Addresses();
    if (server.Port() == 0 && addresses.size() == 1
	    && !addresses.front().empty()) {
	return addresses.front();	/* A Unix-domain listener's path. */
    }
    return std::to_string(server.Port());
}

Server *
Registry::FindByName(Tcl_Interp *interp, const ServerName &name)
{
    std::vector<Server *> found;
    for (Entry &e : servers_) {
	if (name.port ? e.server->Port() == *name.port
		: NameOf(*e.server) == name.path) {
	    found.push_back(e.server.get());
	}
    }
    if (found.size() == 1) {
	return found.front();
    }
    std::string what = name.port ? std::to_string(*name.port) : name.path;
    if (found.size() > 1 && !name.port) {
	/* A path bound again after someone removed the first's file. */
	Tcl_SetObjResult(interp, Tcl_ObjPrintf(
		"more than one socketserver at %s", what.c_str()));
	Tcl_SetErrorCode(interp, "SOCKETSERVER", "AMBIGUOUS", what.c_str(),
		nullptr);
    } else if (found.size() > 1) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("more than one socketserver "
		"on port %s%s", what.c_str(),
		*name.port == 0 ? ": name each by its path" : ""));
	Tcl_SetErrorCode(interp, "SOCKETSERVER", "AMBIGUOUS", what.c_str(),
		nullptr);
    } else if (name.port) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf(
		"no socketserver on port %s", what.c_str()));
	Tcl_SetErrorCode(interp, "SOCKETSERVER", "NOSERVER", what.c_str(),
		nullptr);
    } else if (what.find('/') == std::string::npos) {
	/* Neither a port nor, it seems, a path: Tcl's integer error. */
	Tcl_Obj *value = Tcl_NewStringObj(what.c_str(), -1);
	Tcl_IncrRefCount(value);
	int unused;
	Tcl_GetIntFromObj(interp, value, &unused);
	Tcl_DecrRefCount(value);
    } else {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf(
		"no socketserver at %s", what.c_str()));
	Tcl_SetErrorCode(interp, "SOCKETSERVER", "NOSERVER", what.c_str(),
		nullptr);
    }
    return nullptr;
}

Server *
Registry::FindListening(int fd)
{
    for (Entry &e : servers_) {
	if (e.server->ListensOn(fd)) {
	    return e.server.get();
	}
    }
    return nullptr;
}

Server *
Registry::First()
{
    return servers_.empty() ? nullptr : servers_.front().server.get();
}

uint64_t
Registry::IdOf(const Server *server) const
{
    for (const Entry &e : servers_) {
	if (e.server.get() == server) {
	    return e.id;
	}
    }
    return 0;
}

std::unique_ptr<Server>
Registry::Remove(uint64_t id)
{
    auto it = std::find_if(servers_.begin(), servers_.end(),
	    [id](const Entry &e) { return e.id == id; });
    if (it == servers_.end()) {
	return nullptr;
    }
    std::unique_ptr<Server> server = std::move(it->server);
    servers_.erase(it);
    return server;
}

void
Registry::TrackWorkerFd(UniqueFd *fd, Tcl_ThreadId owner)
{
    workerFds_.push_back(TrackedFd{fd, owner});
}

void
Registry::UntrackWorkerFd(UniqueFd *fd)
{
    workerFds_.erase(std::remove_if(workerFds_.begin(), workerFds_.end(),
	    [fd](const TrackedFd &t) { return t.fd == fd; }),
	    workerFds_.end());
}

/*
 * CloseAll --
 *	Closes every server (joining the dispatchers this process runs).
 *	Servers are destroyed under the lock so that a concurrent fork sees
 *	either the whole server or none of it.
 */

void
Registry::CloseAll()
{
    std::lock_guard<std::mutex> lock(mutex_);
    servers_.clear();
}

void
Registry::ExitHandler(ClientData)
{
    Get().CloseAll();
}

/*
 * The fork hooks. prepare takes the registry lock and then each server's
 * lock (the order every other path uses); both sides release them after.
 * The child's work is closing and dup'ing descriptors: no allocation.
 */

void
Registry::PrepareFork()
{
    Registry &r = Get();
    r.mutex_.lock();
    for (Entry &e : r.servers_) {
	e.server->LockForFork();
    }
}

void
Registry::ParentAfterFork()
{
    Registry &r = Get();
    for (Entry &e : r.servers_) {
	e.server->UnlockAfterFork();
    }
    r.mutex_.unlock();
}

void
Registry::ChildAfterFork()
{
    Registry &r = Get();
    Tcl_ThreadId self = Tcl_GetCurrentThread();
    for (Entry &e : r.servers_) {
	e.server->CloseDispatcherCopies();
	e.server->UnlockAfterFork();
    }
    for (TrackedFd &t : r.workerFds_) {
	if (!t.fd->Valid()) {
	    continue;
	}
	if (t.owner == self) {
	    ReplaceWithNullDevice(t.fd->Get());
	} else {
	    t.fd->Reset();	/* Its thread does not exist here. */
	}
    }
    r.mutex_.unlock();
}

} // namespace socketserver

/*
 * ssWorker.cpp --
 *
 *	The worker side of the hand-off. `client` registers a private
 *	SEQPACKET channel with the dispatcher (once per interp and server, and
 *	again in a forked child) and sends READY. When a connection arrives,
 *	the worker ACKs at once, wraps the descriptor in a Tcl TCP channel and
 *	calls the handler at global level.
 */

#include "ssWorker.h"

#include "ssProtocol.h"
#include "ssRegistry.h"
#include "ssTclUtil.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace socketserver {

namespace {

constexpr const char *kAssocKey = "socketserver::worker";

/* How long `client` waits for room in a busy dispatcher's queue. */
constexpr int kRegisterTimeoutMs = 5000;

struct InterpWorkers;
struct WorkerLink;

/*
 * What a channel's close handler holds to find the link that handed the
 * channel over: the link clears it when it goes, and only the link's own
 * thread may follow it. Freed by the last of its holders (the link and
 * each open channel it handed over), see ReleaseRef. Counted by hand, not
 * a shared_ptr: its polymorphic control block trips UBSan's vptr check in
 * a worker out of descriptors (fault-1.2), where the check cannot probe
 * memory.
 */
struct LinkRef {
    std::atomic<WorkerLink *> link{nullptr};
    Tcl_ThreadId thread;
    std::atomic<unsigned> holders{1};
};

/* Drops one holder of ref; the last frees it. */
void
ReleaseRef(LinkRef *ref)
{
    if (ref->holders.fetch_sub(1) == 1) {
	std::unique_ptr<LinkRef> last(ref);
    }
}

struct WorkerLink {
    InterpWorkers *owner = nullptr;
    std::string key;		/* "server N" or "path P". */
    uint64_t serverId = 0;	/* The registry's id; 0 for a path. */
    WorkerTarget target;	/* To register again in a forked child. */
    std::string where;		/* "on port N" or "at P", for messages. */
    std::string id;		/* N or P, for errorCodes. */
    UniqueFd fd;
    SocketWatch watch;		/* On fd; declared after it, stops first. */
    int pid = 0;		/* The process that registered fd. */
    Tcl_Obj *handler = nullptr;
    bool armed = false;		/* One-shot: READY sent, nothing yet. */
    int concurrency = -1;	/* -concurrency N, or -1: one-shot. */
    uint32_t open = 0;		/* Channels handed over, not yet closed. */
    LinkRef *ref = nullptr;	/* Held; see ReleaseRef. */
};

/* Whether the link's server should tell it when it goes away. */
bool
Listening(const WorkerLink *link)
{
    return link->armed || link->concurrency > 0;
}

struct InterpWorkers {
    Tcl_Interp *interp = nullptr;
    std::map<std::string, std::unique_ptr<WorkerLink>> links;
};

void LinkReadable(ClientData clientData, int mask);

/*
 * CloseLink --
 *	Stops watching a link's channel, closes it and frees the link. The
 *	dispatcher sees end-of-file and re-sends anything unacknowledged.
 */

void
CloseLink(std::unique_ptr<WorkerLink> link)
{
    link->watch.Stop();
    if (link->ref) {
	link->ref->link = nullptr;	/* Its channels' close handlers. */
	ReleaseRef(link->ref);
    }
    if (link->fd.Valid()) {
	DiscardUnreadSockets(link->fd.Get());
    }
    {
	Registry &r = Registry::Get();
	std::lock_guard<std::mutex> lock(r.Mutex());
	r.UntrackWorkerFd(&link->fd);
	link->fd.Reset();
    }
    if (link->handler) {
	Tcl_DecrRefCount(link->handler);
    }
}

/* The keys of an interp's links: one per server, or per control path. */
std::string
ServerKey(uint64_t serverId)
{
    return "server " + std::to_string(serverId);
}

std::string
PathKey(const std::string &path)
{
    return "path " + path;
}

std::unique_ptr<WorkerLink>
TakeLink(InterpWorkers *workers, const std::string &key)
{
    auto it = workers->links.find(key);
    if (it == workers->links.end()) {
	return nullptr;
    }
    std::unique_ptr<WorkerLink> link = std::move(it->second);
    workers->links.erase(it);
    return link;
}

void
DeleteInterpWorkers(ClientData clientData, Tcl_Interp *)
{
    std::unique_ptr<InterpWorkers> workers(
	    static_cast<InterpWorkers *>(clientData));
    for (auto &entry : workers->links) {
	CloseLink(std::move(entry.second));
    }
}

InterpWorkers *
GetInterpWorkers(Tcl_Interp *interp)
{
    auto workers = static_cast<InterpWorkers *>(
	    Tcl_GetAssocData(interp, kAssocKey, nullptr));
    if (!workers) {
	auto fresh = std::make_unique<InterpWorkers>();
	fresh->interp = interp;
	workers = fresh.release();	/* Owned by the AssocData now. */
	Tcl_SetAssocData(interp, kAssocKey, DeleteInterpWorkers, workers);
    }
    return workers;
}

/*
 * FindServer --
 *	Looks up the server a worker asks for (by name, or the process's
 *	first server). Expects the registry lock. Returns nullptr with an
 *	error in interp if there is none.
 */

Server *
FindServer(Tcl_Interp *interp, Registry &r, const ServerName &name)
{
    if (name.Given()) {
	return r.FindByName(interp, name);
    }
    Server *server = r.First();
    if (server) {
	return server;
    }
    {
	Tcl_SetObjResult(interp, Tcl_NewStringObj("no socketserver to take"
		" connections from: call \"::socketserver::socket server\""
		" first", -1));
	Tcl_SetErrorCode(interp, "SOCKETSERVER", "NOSERVER", nullptr);
    }
    return nullptr;
}

/*
 * WatchLink --
 *	Records a new link's descriptor for the fork handlers and starts
 *	watching it from this thread's event loop. Returns 0 or errno.
 */

int
WatchLink(WorkerLink *link)
{
    Registry &r = Registry::Get();
    {
	std::lock_guard<std::mutex> lock(r.Mutex());
	r.TrackWorkerFd(&link->fd, Tcl_GetCurrentThread());
    }
    return link->watch.Start(link->fd.Get(), LinkReadable, link);
}

/*
 * RegisterWithServer --
 *	Makes a private channel and sends the dispatcher's end over a
 *	server's registration socket (of this process or its parent).
 *	Returns 0 or errno.
 */

int
RegisterWithServer(int registration, WorkerLink *link)
{
    UniqueFd dispatcherEnd;
    int err = MakeSeqpacketPair(link->fd, dispatcherEnd);
    if (!err) {
	Message msg = Message::Make(MsgType::Register, link->pid);
	err = SendMessageWaiting(registration, msg.Data(), msg.Size(),
		PassFd{dispatcherEnd.Get(), ProcessId()}, kRegisterTimeoutMs);
    }
    return err;
}

/*
 * TrustsServer --
 *	Whether the process listening on the control socket fd is connected
 *	to runs as a user in trusted (empty: this process's own), as the
 *	kernel tells (SO_PEERCRED). Sets serverUid to its uid (-1 when it
 *	cannot be told). On Windows the secret in the file stands for this.
 */

bool
TrustsServer(int fd, const std::vector<int> &trusted, int &serverUid)
{
    serverUid = -1;
    if (!kUnixFeatures) {
	return true;
    }
    if (PeerUid(fd, serverUid) != 0) {
	serverUid = -1;
	return false;
    }
    if (trusted.empty()) {
	return serverUid == ProcessUid();
    }
    for (int uid : trusted) {
	if (uid == serverUid) {
	    return true;
	}
    }
    return false;
}

/*
 * JoinThroughControl --
 *	Connects to a server's control socket, checks that its server runs
 *	as a user target trusts, says JOIN (this process, and the credential
 *	the platform asks for) and waits (boundedly) for the answer. Returns
 *	0 when the server took this process as a worker, EPERM with
 *	untrustedUid set when the server is not trusted (nothing was sent to
 *	it), EACCES when it refused this process (-allowuid, a wrong
 *	secret), ETIMEDOUT or errno otherwise.
 */

int
JoinThroughControl(const WorkerTarget &target, int pid, UniqueFd &fd,
	int &untrustedUid)
{
    std::string credential;
    int err = ConnectControl(target.path, fd, credential, kRegisterTimeoutMs);
    if (err) {
	return err;
    }
    if (!TrustsServer(fd.Get(), target.serverUids, untrustedUid)) {
	fd.Reset();
	return EPERM;
    }
    Message join = Message::Make(MsgType::Join, pid);
    join.SetText(credential);
    err = SendMessageWaiting(fd.Get(), join.Data(), join.Size(), kNoFd,
	    kRegisterTimeoutMs);
    if (err == EPIPE || err == ECONNRESET) {
	return EACCES;		/* Closed on us before we asked. */
    }
    if (err) {
	return err;
    }
    do {
	err = WaitReadable(fd.Get(), kRegisterTimeoutMs);
    } while (err == EINTR);
    if (err) {
	return err;
    }
    char buf[kMaxMessage];
    UniqueFd unused;
    long n = ReceiveMessage(fd.Get(), buf, sizeof(buf), unused, Blocking::No,
	    PassedSocket::Refuse);
    Message msg;
    if (n > 0 && Message::Parse(buf, n, msg)
	    && msg.header.type == MsgType::Welcome) {
	return 0;
    }
    return n == 0 || n == -ECONNRESET ? EACCES : (n < 0 ? -n : EPROTO);
}

/*
 * NewLink --
 *	Joins the server target names: over the registration socket of a
 *	server in this process, or by connecting to a control socket (the
 *	accepted connection is the private channel). The registry lock is
 *	held only to look the server up: connecting, waiting for WELCOME and
 *	a full registration queue may take seconds, and a fork or another
 *	thread's `info` must not wait for them. Returns the link, not yet
 *	watched (see WatchLink), or nullptr with an error in interp.
 */

std::unique_ptr<WorkerLink>
NewLink(Tcl_Interp *interp, InterpWorkers *workers, const WorkerTarget &target)
{
    auto link = std::make_unique<WorkerLink>();
    link->owner = workers;
    link->target = target;
    link->pid = ProcessId();
    auto ref = std::make_unique<LinkRef>();
    ref->link = link.get();
    ref->thread = Tcl_GetCurrentThread();
    link->ref = ref.release();	/* Freed by ReleaseRef. */
    std::string failure;
    int err;
    if (!target.path.empty()) {
	link->key = PathKey(target.path);
	link->where = "at " + target.path;
	link->id = target.path;
	failure = "couldn't connect to socketserver ";
	int untrustedUid = -1;
	err = JoinThroughControl(target, link->pid, link->fd, untrustedUid);
	if (err == EPERM) {
	    Tcl_SetObjResult(interp, Tcl_ObjPrintf("couldn't connect to "
		    "socketserver at %s: its server runs as uid %d, which "
		    "-serveruid does not name", target.path.c_str(),
		    untrustedUid));
	    Tcl_SetErrorCode(interp, "SOCKETSERVER", "SERVERUID",
		    std::to_string(untrustedUid).c_str(), nullptr);
	    return nullptr;
	}
    } else {
	UniqueFd registration;
	{
	    Registry &r = Registry::Get();
	    std::lock_guard<std::mutex> lock(r.Mutex());
	    Server *server = FindServer(interp, r, target.server);
	    if (!server) {
		return nullptr;
	    }
	    link->serverId = r.IdOf(server);
	    link->key = ServerKey(link->serverId);
	    link->id = NameOf(*server);
	    link->where = (server->Port() ? "on port " : "on ") + link->id;
	    err = DuplicateFd(server->RegistrationFd(), registration);
	}
	failure = "couldn't register with socketserver ";
	if (!err) {
	    err = RegisterWithServer(registration.Get(), link.get());
	}
    }
    if (err) {
	SetPosixError(interp, failure + link->where, err);
	return nullptr;
    }
    return link;
}

/*
 * FindLink --
 *	The live link of interp for target, if it has one. A link inherited
 *	across fork is closed here (the child registers anew).
 */

WorkerLink *
FindLink(Tcl_Interp *interp, InterpWorkers *workers,
	const WorkerTarget &target, bool &error)
{
    std::string key;
    error = false;
    if (!target.path.empty()) {
	key = PathKey(target.path);
    } else {
	Registry &r = Registry::Get();
	std::lock_guard<std::mutex> lock(r.Mutex());
	Server *server = FindServer(interp, r, target.server);
	if (!server) {
	    error = true;
	    return nullptr;
	}
	key = ServerKey(r.IdOf(server));
    }
    auto it = workers->links.find(key);
    if (it == workers->links.end()) {
	return nullptr;
    }
    if (it->second->pid != ProcessId()) {
	CloseLink(TakeLink(workers, key));
	return nullptr;
    }
    return it->second.get();
}

/*
 * SendReady --
 *	Tells the dispatcher this link can take one connection. Returns 0 or
 *	errno.
 */

int
SendReady(WorkerLink *link)
{
    Message msg = Message::Make(MsgType::Ready);
    int err = SendMessage(link->fd.Get(), msg.Data(), msg.Size(), kNoFd);
    if (!err) {
	link->armed = true;
    }
    return err;
}

/*
 * SendCredit --
 *	Tells the dispatcher how many more connections a -concurrency link
 *	can take beyond those it has acknowledged, and how many it holds
 *	(see ssProtocol.h). Returns 0 or errno.
 */

int
SendCredit(WorkerLink *link)
{
    uint32_t limit = static_cast<uint32_t>(link->concurrency);
    uint32_t room = limit > link->open ? limit - link->open : 0;
    Message msg = Message::MakeCredit(room, link->open);
    return SendMessage(link->fd.Get(), msg.Data(), msg.Size(), kNoFd);
}

/*
 * ChannelGone --
 *	A channel this link handed over has closed (or could not be made):
 *	a -concurrency link has room again and says so. A failed send is
 *	left to the link's file handler, which sees the channel end.
 */

void
ChannelGone(WorkerLink *link)
{
    if (link->concurrency >= 0 && link->pid == ProcessId()) {
	SendCredit(link);
    }
}

/*
 * HandedChannelClosed --
 *	Close handler of every channel a link hands to its handler, wherever
 *	it is closed from: the channel stops counting against the link. A
 *	link already gone, or a channel closed in another thread (moved
 *	there with thread::transfer), counts nothing.
 */

void
HandedChannelClosed(ClientData clientData)
{
    auto ref = static_cast<LinkRef *>(clientData);
    WorkerLink *link = ref->link;
    bool ours = ref->thread == Tcl_GetCurrentThread();
    ReleaseRef(ref);
    if (link && ours) {
	link->open--;
	ChannelGone(link);
    }
}

/*
 * CountHandedChannel --
 *	Counts chan against link until it is closed.
 */

void
CountHandedChannel(WorkerLink *link, Tcl_Channel chan)
{
    link->ref->holders++;
    Tcl_CreateCloseHandler(chan, HandedChannelClosed, link->ref);
    link->open++;
}

/*
 * ReportLostServer --
 *	Raises a background error in an armed worker whose server has gone
 *	(or, over a control socket, refused it).
 */

void
ReportLostServer(Tcl_Interp *interp, const std::string &where,
	const std::string &id)
{
    Tcl_SetObjResult(interp, Tcl_ObjPrintf(
	    "socketserver: lost the server %s", where.c_str()));
    Tcl_SetErrorCode(interp, "SOCKETSERVER", "LOST", id.c_str(), nullptr);
    Tcl_BackgroundException(interp, TCL_ERROR);
}

/*
 * ReregisterInChild --
 *	In a process forked from a worker: drops the channel inherited from
 *	the parent (already replaced by /dev/null) and, if the link was
 *	armed or persistent, registers and arms anew with the same handler
 *	(and -concurrency; the child holds none of the parent's channels).
 */

void
ReregisterInChild(InterpWorkers *workers, const std::string &key)
{
    std::unique_ptr<WorkerLink> old = TakeLink(workers, key);
    if (!old->handler) {
	CloseLink(std::move(old));
	return;
    }
    bool wasArmed = old->armed;
    std::optional<int> concurrency;
    if (old->concurrency >= 0) {
	concurrency = old->concurrency;
    }
    WorkerTarget target = old->target;
    Tcl_Obj *handler = old->handler;
    Tcl_IncrRefCount(handler);
    CloseLink(std::move(old));
    if ((wasArmed || concurrency) && ArmWorker(workers->interp, target,
	    handler, concurrency) != TCL_OK) {
	Tcl_BackgroundException(workers->interp, TCL_ERROR);
    }
    Tcl_DecrRefCount(handler);
}

/*
 * InvokeHandler --
 *	Wraps an accepted descriptor in a Tcl TCP channel (a file channel for
 *	a Unix-domain connection, see MakeChannelFor), counts it against link
 *	until it closes, and calls {*}handler chan address port at global
 *	level. As Tcl's own accept callback does: an error is a background
 *	error and closes the channel, unless the handler already did. link
 *	may be gone when this returns.
 */

void
InvokeHandler(WorkerLink *link, Tcl_Obj *handler, UniqueFd conn,
	const std::string &peer)
{
    Tcl_Interp *interp = link->owner->interp;
    size_t space = peer.rfind(' ');	/* A Unix path may hold spaces. */
    std::string address = peer.substr(0, space);
    int port = space == std::string::npos ? 0
	    : std::atoi(peer.c_str() + space + 1);

    Tcl_Channel chan = MakeChannelFor(conn);
    if (!chan) {
	ChannelGone(link);
	return;			/* conn closes here. */
    }
    CountHandedChannel(link, chan);
    Tcl_RegisterChannel(interp, chan);
    Tcl_RegisterChannel(nullptr, chan);	/* Hold it across the call. */

    Tcl_Obj *cmd = Tcl_DuplicateObj(handler);
    Tcl_IncrRefCount(cmd);
    Tcl_ListObjAppendElement(nullptr, cmd,
	    Tcl_NewStringObj(Tcl_GetChannelName(chan), -1));
    Tcl_ListObjAppendElement(nullptr, cmd,
	    Tcl_NewStringObj(address.c_str(), -1));
    Tcl_ListObjAppendElement(nullptr, cmd, Tcl_NewIntObj(port));
    Tcl_Size objc;
    Tcl_Obj **objv;
    Tcl_ListObjGetElements(nullptr, cmd, &objc, &objv);

    Tcl_Preserve(interp);
    int code = Tcl_EvalObjv(interp, objc, objv, TCL_EVAL_GLOBAL);
    if (code != TCL_OK) {
	Tcl_BackgroundException(interp, code);
	Tcl_UnregisterChannel(interp, chan);
    }
    Tcl_UnregisterChannel(nullptr, chan);
    Tcl_Release(interp);
    Tcl_DecrRefCount(cmd);
}

/*
 * ServiceLink --
 *	A private channel is readable. CONN: acknowledge, disarm (one-shot),
 *	call the handler. End-of-file or anything malformed: the server is gone.
 */

void
ServiceLink(ClientData clientData)
{
    auto link = static_cast<WorkerLink *>(clientData);
    InterpWorkers *workers = link->owner;
    Tcl_Interp *interp = workers->interp;
    std::string key = link->key;

    if (link->pid != ProcessId()) {
	ReregisterInChild(workers, key);
	return;
    }

    char buf[kMaxMessage];
    UniqueFd conn;
    long n = ReceiveMessage(link->fd.Get(), buf, sizeof(buf), conn,
	    Blocking::No, PassedSocket::Take);
    if (n == -EAGAIN) {
	return;
    }
    if (n == -EMFILE) {
	/*
	 * A connection came but this process had no descriptor left for
	 * it. Leave the server, so that it re-sends the connection to
	 * another worker, and say why; `client` joins again.
	 */

	std::string where = link->where;
	CloseLink(TakeLink(workers, key));
	SetPosixError(interp, "couldn't receive a connection " + where,
		EMFILE);
	Tcl_BackgroundException(interp, TCL_ERROR);
	return;
    }
    Message msg;
    if (n <= 0 || !Message::Parse(buf, n, msg)
	    || msg.header.type != MsgType::Conn || !conn.Valid()) {
	bool wasArmed = Listening(link);
	std::string where = link->where, id = link->id;
	CloseLink(TakeLink(workers, key));
	if (wasArmed) {
	    ReportLostServer(interp, where, id);
	}
	return;
    }

    Message ack = Message::Make(MsgType::Ack);
    SendMessage(link->fd.Get(), ack.Data(), ack.Size(), kNoFd);
    link->armed = false;
    Tcl_Obj *handler = link->handler;
    Tcl_IncrRefCount(handler);
    InvokeHandler(link, handler, std::move(conn), msg.Text());
    Tcl_DecrRefCount(handler);	/* link may be gone by now. */
}

/*
 * LinkReadable --
 *	The file handler on a private channel. No C++ exception may unwind
 *	into Tcl's notifier: running out of memory here is a background
 *	error, and the worker goes on.
 */

void
LinkReadable(ClientData clientData, int)
{
    Tcl_Interp *interp = static_cast<WorkerLink *>(clientData)->owner->interp;
    try {
	ServiceLink(clientData);
    } catch (const std::exception &e) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("socketserver: %s", e.what()));
	Tcl_SetErrorCode(interp, "SOCKETSERVER", "INTERNAL", nullptr);
	Tcl_BackgroundException(interp, TCL_ERROR);
    }
}

/*
 * FailRegistration --
 *	Drops a link that could not be armed and leaves the error, errno
 *	err, in interp. Returns TCL_ERROR.
 */

int
FailRegistration(Tcl_Interp *interp, InterpWorkers *workers,
	WorkerLink *link, int err)
{
    std::string where = link->where;
    CloseLink(TakeLink(workers, link->key));
    return SetPosixError(interp, "couldn't register with socketserver "
	    + where, err);
}

} // namespace

/*
 * ArmWorker --
 *	Implements `client`: checks the handler names a command, joins the
 *	server if this interp has no live link to it (or inherited one
 *	across fork), and stores the handler. With concurrency the link
 *	becomes (or stays) persistent with that limit and sends its CREDIT;
 *	without, a one-shot link sends READY unless already armed, and a
 *	second `client` only replaces the handler (of a persistent link too).
 */

int
ArmWorker(Tcl_Interp *interp, const WorkerTarget &target, Tcl_Obj *handler,
	std::optional<int> concurrency)
{
    Tcl_Size objc;
    Tcl_Obj **objv;
    if (Tcl_ListObjGetElements(interp, handler, &objc, &objv) != TCL_OK) {
	return TCL_ERROR;
    }
    if (objc == 0 || !Tcl_GetCommandFromObj(interp, objv[0])) {
	const char *name = objc ? Tcl_GetString(objv[0]) : "";
	Tcl_SetObjResult(interp, Tcl_ObjPrintf(
		"invalid command name \"%s\"", name));
	Tcl_SetErrorCode(interp, "TCL", "LOOKUP", "COMMAND", name, nullptr);
	return TCL_ERROR;
    }

    InterpWorkers *workers = GetInterpWorkers(interp);
    bool error;
    WorkerLink *link = FindLink(interp, workers, target, error);
    if (error) {
	return TCL_ERROR;
    }
    if (!link) {
	std::unique_ptr<WorkerLink> fresh = NewLink(interp, workers, target);
	if (!fresh) {
	    return TCL_ERROR;
	}
	link = fresh.get();
	workers->links.emplace(link->key, std::move(fresh));
	int err;
	try {
	    err = WatchLink(link);	/* Only once nothing can free it. */
	} catch (...) {
	    CloseLink(TakeLink(workers, link->key));
	    throw;
	}
	if (err) {
	    return FailRegistration(interp, workers, link, err);
	}
    }

    Tcl_IncrRefCount(handler);
    if (link->handler) {
	Tcl_DecrRefCount(link->handler);
    }
    link->handler = handler;
    int err = 0;
    if (concurrency) {
	link->concurrency = *concurrency;
	link->armed = false;	/* The CREDIT replaces a READY. */
	err = SendCredit(link);
    } else if (link->concurrency < 0 && !link->armed) {
	err = SendReady(link);
    }
    if (err) {
	return FailRegistration(interp, workers, link, err);
    }
    return TCL_OK;
}

void
ForgetWorkerLink(Tcl_Interp *interp, uint64_t serverId)
{
    auto workers = static_cast<InterpWorkers *>(
	    Tcl_GetAssocData(interp, kAssocKey, nullptr));
    if (workers) {
	if (std::unique_ptr<WorkerLink> link =
		TakeLink(workers, ServerKey(serverId))) {
	    CloseLink(std::move(link));
	}
    }
}

} // namespace socketserver

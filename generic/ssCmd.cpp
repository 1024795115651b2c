/*
 * ssCmd.cpp --
 *
 *	The ::socketserver::socket command (server, client, close, info) and
 *	Socketserver_Init.
 */

#include "ssRegistry.h"
#include "ssTclUtil.h"
#include "ssWorker.h"

#include <tcl.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#ifndef _WIN32
extern "C" int SocketserverSwig_Init(Tcl_Interp *interp);
#endif

namespace socketserver {

namespace {

/*
 * SetOpenError --
 *	Leaves "couldn't open socket: ..." in interp, worded as Tcl's socket
 *	command words it, with a POSIX errorCode where there is an errno.
 */

int
SetOpenError(Tcl_Interp *interp, const ListenError &error)
{
    if (!error.resolverMessage.empty()) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("couldn't open socket: %s",
		error.resolverMessage.c_str()));
	Tcl_SetErrorCode(interp, "SOCKETSERVER", "RESOLVE",
		error.resolverMessage.c_str(), nullptr);
	return TCL_ERROR;
    }
    return SetPosixError(interp, "couldn't open socket", error.posixError);
}

/*
 * GetPort --
 *	Reads a port number 0..65535 as Tcl's socket command does. Returns a
 *	Tcl result; sets *portPtr.
 */

int
GetPort(Tcl_Interp *interp, Tcl_Obj *obj, int *portPtr)
{
    if (Tcl_GetIntFromObj(interp, obj, portPtr) != TCL_OK) {
	return TCL_ERROR;
    }
    if (*portPtr < 0 || *portPtr > 0xFFFF) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("couldn't open socket: "
		"port number too %s", *portPtr < 0 ? "low" : "high"));
	Tcl_SetErrorCode(interp, "TCL", "VALUE", "PORT", nullptr);
	return TCL_ERROR;
    }
    return TCL_OK;
}

/*
 * GetServerName --
 *	Reads what names a server for client -port, info and close: a port
 *	number (checked as GetPort does), else a Unix-domain listener's path
 *	(see Registry::FindByName). Returns a Tcl result.
 */

int
GetServerName(Tcl_Interp *interp, Tcl_Obj *obj, ServerName &name)
{
    int port;
    const char *text = Tcl_GetString(obj);
    if (Tcl_GetIntFromObj(nullptr, obj, &port) == TCL_OK || !*text) {
	if (GetPort(interp, obj, &port) != TCL_OK) {
	    return TCL_ERROR;
	}
	name.port = port;
    } else {
	name.path = text;
    }
    return TCL_OK;
}

/*
 * Unsupported --
 *	Refuses an option that needs what only Unix has (kUnixFeatures is
 *	false only on Windows).
 *	Returns TCL_ERROR.
 */

int
Unsupported(Tcl_Interp *interp, Tcl_Obj *option)
{
    const char *name = Tcl_GetString(option);
    Tcl_SetObjResult(interp, Tcl_ObjPrintf(
	    "option \"%s\" is not supported on Windows", name));
    Tcl_SetErrorCode(interp, "SOCKETSERVER", "UNSUPPORTED", name, nullptr);
    return TCL_ERROR;
}

int
MissingValue(Tcl_Interp *interp, Tcl_Obj *option)
{
    Tcl_SetObjResult(interp, Tcl_ObjPrintf("no argument given for %s option",
	    Tcl_GetString(option)));
    Tcl_SetErrorCode(interp, "TCL", "ARGUMENT", "MISSING", nullptr);
    return TCL_ERROR;
}

/*
 * GetPath --
 *	Reads a socket path option's value into path; an empty one names no
 *	file, and fails as open("") does: ENOENT, after what (such as
 *	"couldn't open socket"). Returns a Tcl result.
 */

int
GetPath(Tcl_Interp *interp, Tcl_Obj *value, const char *what,
	std::string &path)
{
    path = Tcl_GetString(value);
    if (path.empty()) {
	return SetPosixError(interp, std::string(what) + " \"\"", ENOENT);
    }
    return TCL_OK;
}

/*
 * GetUidList --
 *	Reads -allowuid's list of numeric uids. Returns a Tcl result.
 */

int
GetUidList(Tcl_Interp *interp, Tcl_Obj *value, std::vector<int> &uids)
{
    Tcl_Size objc;
    Tcl_Obj **objv;
    if (Tcl_ListObjGetElements(interp, value, &objc, &objv) != TCL_OK) {
	return TCL_ERROR;
    }
    uids.clear();
    for (Tcl_Size i = 0; i < objc; i++) {
	int uid;
	if (Tcl_GetIntFromObj(interp, objv[i], &uid) != TCL_OK) {
	    return TCL_ERROR;
	}
	uids.push_back(uid);
    }
    return TCL_OK;
}

/*
 * GetAddressFilter --
 *	Reads -proxyfrom's list of addresses and networks. Returns a Tcl
 *	result.
 */

int
GetAddressFilter(Tcl_Interp *interp, Tcl_Obj *value, AddressFilter &filter)
{
    Tcl_Size objc;
    Tcl_Obj **objv;
    if (Tcl_ListObjGetElements(interp, value, &objc, &objv) != TCL_OK) {
	return TCL_ERROR;
    }
    for (Tcl_Size i = 0; i < objc; i++) {
	if (!filter.Add(Tcl_GetString(objv[i]))) {
	    Tcl_SetObjResult(interp, Tcl_ObjPrintf("bad address \"%s\": must"
		    " be an IPv4 or IPv6 address, optionally /prefix",
		    Tcl_GetString(objv[i])));
	    Tcl_SetErrorCode(interp, "TCL", "VALUE", "ADDRESS", nullptr);
	    return TCL_ERROR;
	}
    }
    return TCL_OK;
}

/*
 * GetPositive --
 *	Reads an option's positive integer. Returns a Tcl result; the error
 *	names the option's value, as in `bad backlog "0": ...`.
 */

int
GetPositive(Tcl_Interp *interp, Tcl_Obj *value, const char *what, int *out)
{
    if (Tcl_GetIntFromObj(interp, value, out) != TCL_OK) {
	return TCL_ERROR;
    }
    if (*out < 1) {
	std::string code(what);
	for (char &c : code) {
	    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
	}
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("bad %s \"%s\": "
		"must be a positive integer", what, Tcl_GetString(value)));
	Tcl_SetErrorCode(interp, "TCL", "VALUE", code.c_str(), nullptr);
	return TCL_ERROR;
    }
    return TCL_OK;
}

/*
 * GetFileMode --
 *	Reads a file mode as an octal number, like 0600. Returns a Tcl result.
 */

int
GetFileMode(Tcl_Interp *interp, Tcl_Obj *value, int *mode)
{
    const char *s = Tcl_GetString(value);
    char *end;
    long m = std::strtol(s, &end, 8);
    if (*s == '\0' || *end != '\0' || m < 0 || m > 07777) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("bad mode \"%s\": must be an"
		" octal file mode such as 0600", s));
	Tcl_SetErrorCode(interp, "TCL", "VALUE", "MODE", nullptr);
	return TCL_ERROR;
    }
    *mode = static_cast<int>(m);
    return TCL_OK;
}

/*
 * Where a server's -log goes: a command prefix in an interp, called in
 * that interp's thread. The dispatcher only queues messages to it
 * (QueueLogMessage); interp is cleared when the interp is deleted, so
 * messages queued after that are dropped.
 */
struct LogTarget {
    std::mutex mutex;
    Tcl_Interp *interp;	/* Guarded by mutex; null once deleted. */
    Tcl_ThreadId thread;
    Tcl_Obj *cmd;	/* Used only in thread. */
};

struct LogEvent {
    Tcl_Event header;	/* First: Tcl frees the event with ckfree. */
    struct Payload {
	std::shared_ptr<LogTarget> target;
	std::string level, message;
    } *payload;		/* Owned; freed by RunLogEvent. */
};

/*
 * RunLogEvent --
 *	In the server's thread: calls {*}cmd level message at global level
 *	(an error is a background error), unless the interp has gone.
 */

int
RunLogEvent(Tcl_Event *event, int flags)
{
    if (!(flags & TCL_FILE_EVENTS)) {
	return 0;
    }
    std::unique_ptr<LogEvent::Payload> payload(
	    reinterpret_cast<LogEvent *>(event)->payload);
    Tcl_Interp *interp;
    {
	std::lock_guard<std::mutex> lock(payload->target->mutex);
	interp = payload->target->interp;
    }
    if (!interp) {
	return 1;
    }
    Tcl_Obj *cmd = Tcl_DuplicateObj(payload->target->cmd);
    Tcl_IncrRefCount(cmd);
    Tcl_ListObjAppendElement(nullptr, cmd,
	    Tcl_NewStringObj(payload->level.c_str(), -1));
    Tcl_ListObjAppendElement(nullptr, cmd,
	    Tcl_NewStringObj(payload->message.c_str(), -1));
    Tcl_Preserve(interp);
    if (Tcl_EvalObjEx(interp, cmd, TCL_EVAL_GLOBAL) != TCL_OK) {
	Tcl_BackgroundException(interp, TCL_ERROR);
    }
    Tcl_Release(interp);
    Tcl_DecrRefCount(cmd);
    return 1;
}

/*
 * QueueLogMessage --
 *	The server's log callback, in the dispatcher thread: never touches
 *	the interp, only queues the message to its thread and wakes it.
 */

void
QueueLogMessage(const std::shared_ptr<LogTarget> &target, const char *level,
	const std::string &message)
{
    std::lock_guard<std::mutex> lock(target->mutex);
    if (!target->interp) {
	return;
    }
    auto payload = std::make_unique<LogEvent::Payload>(
	    LogEvent::Payload{target, level, message});
    auto event = reinterpret_cast<LogEvent *>(Tcl_Alloc(sizeof(LogEvent)));
    event->header.proc = RunLogEvent;
    event->payload = payload.release();
    Tcl_ThreadQueueEvent(target->thread, &event->header, TCL_QUEUE_TAIL);
    Tcl_ThreadAlert(target->thread);
}

/*
 * ForgetLogInterp --
 *	The interp of a -log is being deleted: later messages are dropped,
 *	and its command is released. clientData is a heap copy of the
 *	target's shared_ptr.
 */

void
ForgetLogInterp(ClientData clientData, Tcl_Interp *)
{
    std::unique_ptr<std::shared_ptr<LogTarget>> target(
	    static_cast<std::shared_ptr<LogTarget> *>(clientData));
    {
	std::lock_guard<std::mutex> lock((*target)->mutex);
	(*target)->interp = nullptr;
    }
    Tcl_DecrRefCount((*target)->cmd);	/* Nothing runs it from now on. */
}

/*
 * SetLogTarget --
 *	-log cmd: checks it is a list and makes the server's log callback
 *	queue to this interp's thread. Returns a Tcl result.
 */

int
SetLogTarget(Tcl_Interp *interp, Tcl_Obj *cmd, ServerOptions &o)
{
    Tcl_Size length;
    if (Tcl_ListObjLength(interp, cmd, &length) != TCL_OK) {
	return TCL_ERROR;
    }
    if (length == 0) {
	o.log = nullptr;
	return TCL_OK;
    }
    auto target = std::make_shared<LogTarget>();
    target->interp = interp;
    target->thread = Tcl_GetCurrentThread();
    target->cmd = Tcl_DuplicateObj(cmd);
    Tcl_IncrRefCount(target->cmd);	/* Until ForgetLogInterp. */
    auto keep = std::make_unique<std::shared_ptr<LogTarget>>(target);
    Tcl_CallWhenDeleted(interp, ForgetLogInterp, keep.release());
    o.log = [target](const char *level, const std::string &message) {
	QueueLogMessage(target, level, message);
    };
    return TCL_OK;
}

/*
 * ServerCmd --
 *	server ?option value ...? ?port?
 *	Binds and listens now; starts the dispatcher. Returns the port (0
 *	for a Unix-domain listener). The port is required unless -fd or
 *	-unix says where to listen.
 */

int
ServerCmd(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    static const char *const options[] = {
	"-allowuid", "-backlog", "-control", "-controlmode", "-fd", "-log",
	"-myaddr", "-proxyfrom", "-proxyprotocol", "-proxytimeout",
	"-reuseport", "-unix", nullptr
    };
    enum { OPT_ALLOWUID, OPT_BACKLOG, OPT_CONTROL, OPT_CONTROLMODE, OPT_FD,
	OPT_LOG, OPT_MYADDR, OPT_PROXYFROM, OPT_PROXYPROTOCOL,
	OPT_PROXYTIMEOUT, OPT_REUSEPORT, OPT_UNIX };

    if (objc < 3) {
	Tcl_WrongNumArgs(interp, 2, objv, "?option value ...? ?port?");
	return TCL_ERROR;
    }

    /*
     * Options and their values from the left; a single word left over is
     * the port (absent when -fd or -unix says where to listen). A left
     * over word that names an option is missing its value, and so is the
     * last option when the port is missing and nothing else replaces it.
     */

    ServerOptions o;
    int i = 2;
    for (; i < objc - 1; i += 2) {
	int index;
	if (Tcl_GetIndexFromObj(interp, objv[i], options, "option", 0,
		&index) != TCL_OK) {
	    return TCL_ERROR;
	}
	if (!kUnixFeatures && (index == OPT_ALLOWUID
		|| index == OPT_CONTROLMODE || index == OPT_FD
		|| index == OPT_REUSEPORT || index == OPT_UNIX)) {
	    return Unsupported(interp, objv[i]);
	}
	Tcl_Obj *value = objv[i + 1];
	int flag, code = TCL_OK;
	switch (index) {
	case OPT_ALLOWUID:
	    code = GetUidList(interp, value, o.allowUids);
	    break;
	case OPT_BACKLOG:
	    code = GetPositive(interp, value, "backlog", &o.tcp.backlog);
	    break;
	case OPT_CONTROL:
	    code = GetPath(interp, value, "couldn't open socket",
		    o.controlPath);
	    break;
	case OPT_CONTROLMODE:
	    code = GetFileMode(interp, value, &o.controlMode);
	    break;
	case OPT_FD:
	    code = Tcl_GetIntFromObj(interp, value, &o.adoptFd);
	    if (code == TCL_OK && o.adoptFd < 0) {
		Tcl_SetObjResult(interp, Tcl_ObjPrintf("bad descriptor \"%s\":"
			" must be a non-negative integer",
			Tcl_GetString(value)));
		Tcl_SetErrorCode(interp, "TCL", "VALUE", "DESCRIPTOR",
			nullptr);
		code = TCL_ERROR;
	    }
	    break;
	case OPT_LOG:
	    code = SetLogTarget(interp, value, o);
	    break;
	case OPT_MYADDR:
	    o.tcp.host = Tcl_GetString(value);
	    break;
	case OPT_PROXYFROM:
	    code = GetAddressFilter(interp, value, o.proxyFrom);
	    o.proxyFromSet = true;
	    break;
	case OPT_PROXYPROTOCOL:
	    code = Tcl_GetBooleanFromObj(interp, value, &flag);
	    o.proxyProtocol = flag != 0;
	    break;
	case OPT_PROXYTIMEOUT:
	    code = GetPositive(interp, value, "timeout", &o.proxyTimeoutMs);
	    break;
	case OPT_REUSEPORT:
	    code = Tcl_GetBooleanFromObj(interp, value, &flag);
	    o.tcp.reusePort = flag != 0;
	    break;
	case OPT_UNIX:
	    code = GetPath(interp, value, "couldn't open socket", o.unixPath);
	    break;
	}
	if (code != TCL_OK) {
	    return TCL_ERROR;
	}
    }
    bool hasPort = i == objc - 1;
    int index;
    if (hasPort && Tcl_GetString(objv[i])[0] == '-' && Tcl_GetIndexFromObj(
	    nullptr, objv[i], options, "option", 0, &index) == TCL_OK) {
	return MissingValue(interp, objv[i]);
    }
    if (!hasPort && o.adoptFd < 0 && o.unixPath.empty()) {
	return MissingValue(interp, objv[objc - 2]);	/* Its value: the port. */
    }
    int sources = (hasPort ? 1 : 0) + (o.adoptFd >= 0 ? 1 : 0)
	    + (o.unixPath.empty() ? 0 : 1);
    if (sources != 1) {
	Tcl_SetObjResult(interp, Tcl_NewStringObj("give exactly one of a "
		"port, -fd or -unix", -1));
	Tcl_SetErrorCode(interp, "TCL", "WRONGARGS", nullptr);
	return TCL_ERROR;
    }
    if (hasPort && GetPort(interp, objv[objc - 1], &o.tcp.port) != TCL_OK) {
	return TCL_ERROR;
    }

    /*
     * A name is looked up before the registry lock is taken: a slow
     * resolver must not hold up info, client, close and fork elsewhere.
     */

    ListenError error;
    if (hasPort && ResolveListenHost(o.tcp, error) != 0) {
	return SetOpenError(interp, error);
    }
    Registry &r = Registry::Get();
    std::lock_guard<std::mutex> lock(r.Mutex());
    if (o.adoptFd >= 0 && r.FindListening(o.adoptFd)) {
	ListenError busy;
	busy.posixError = EBUSY;	/* Two owners would close it twice. */
	return SetOpenError(interp, busy);
    }
    std::unique_ptr<Server> server;
    if (Server::Open(o, server, error) != 0) {
	return SetOpenError(interp, error);
    }
    Tcl_Obj *name = server->Port() ? Tcl_NewIntObj(server->Port())
	    : Tcl_NewStringObj(NameOf(*server).c_str(), -1);
    r.Add(std::move(server));
    Tcl_SetObjResult(interp, name);
    return TCL_OK;
}

/*
 * GetConcurrency --
 *	Reads -concurrency's limit: a non-negative integer (0: drain).
 *	Returns a Tcl result.
 */

int
GetConcurrency(Tcl_Interp *interp, Tcl_Obj *value, int *out)
{
    if (Tcl_GetIntFromObj(interp, value, out) != TCL_OK) {
	return TCL_ERROR;
    }
    if (*out < 0) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("bad concurrency \"%s\": "
		"must be a non-negative integer", Tcl_GetString(value)));
	Tcl_SetErrorCode(interp, "TCL", "VALUE", "CONCURRENCY", nullptr);
	return TCL_ERROR;
    }
    return TCL_OK;
}

/*
 * ClientCmd --
 *	client ?-port port | -connect path ?-serveruid uids?? ?-concurrency n?
 *	    handler
 */

int
ClientCmd(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    static const char *const options[] = {
	"-concurrency", "-connect", "-port", "-serveruid", nullptr
    };
    enum { OPT_CONCURRENCY, OPT_CONNECT, OPT_PORT, OPT_SERVERUID };
    static const char *usage = "?-port port? ?-connect path?"
	    " ?-serveruid uids? ?-concurrency n? handler";

    if (objc < 3 || objc % 2 == 0) {
	if (objc > 3) {
	    int index;
	    if (Tcl_GetIndexFromObj(interp, objv[2], options, "option", 0,
		    &index) != TCL_OK) {
		return TCL_ERROR;
	    }
	}
	Tcl_WrongNumArgs(interp, 2, objv, usage);
	return TCL_ERROR;
    }
    WorkerTarget target;
    bool serverUidGiven = false;
    std::optional<int> concurrency;
    for (int i = 2; i < objc - 1; i += 2) {
	int index, value;
	if (Tcl_GetIndexFromObj(interp, objv[i], options, "option", 0,
		&index) != TCL_OK) {
	    return TCL_ERROR;
	}
	if (index == OPT_PORT) {
	    if (GetServerName(interp, objv[i + 1], target.server) != TCL_OK) {
		return TCL_ERROR;
	    }
	} else if (index == OPT_CONCURRENCY) {
	    if (GetConcurrency(interp, objv[i + 1], &value) != TCL_OK) {
		return TCL_ERROR;
	    }
	    concurrency = value;
	} else if (index == OPT_SERVERUID) {
	    if (!kUnixFeatures) {
		return Unsupported(interp, objv[i]);
	    }
	    if (GetUidList(interp, objv[i + 1], target.serverUids)
		    != TCL_OK) {
		return TCL_ERROR;
	    }
	    serverUidGiven = true;
	} else if (GetPath(interp, objv[i + 1],
		"couldn't connect to socketserver at", target.path)
		!= TCL_OK) {
	    return TCL_ERROR;
	}
    }
    if (target.server.Given() && !target.path.empty()) {
	Tcl_SetObjResult(interp, Tcl_NewStringObj(
		"give -port or -connect, not both", -1));
	Tcl_SetErrorCode(interp, "TCL", "WRONGARGS", nullptr);
	return TCL_ERROR;
    }
    if (serverUidGiven && target.path.empty()) {
	Tcl_SetObjResult(interp, Tcl_NewStringObj(
		"-serveruid applies only with -connect", -1));
	Tcl_SetErrorCode(interp, "TCL", "WRONGARGS", nullptr);
	return TCL_ERROR;
    }
    if (objc == 3 && Tcl_GetString(objv[2])[0] == '-') {
	int index;
	if (Tcl_GetIndexFromObj(nullptr, objv[2], options, "option", 0,
		&index) == TCL_OK) {
	    Tcl_WrongNumArgs(interp, 2, objv, usage);
	    return TCL_ERROR;	/* "client -port": the handler is missing. */
	}
    }
    return ArmWorker(interp, target, objv[objc - 1], concurrency);
}

/*
 * ListenFdsCmd --
 *	::socketserver::listenfds: the descriptors systemd (or anything that
 *	follows its LISTEN_FDS/LISTEN_PID convention) passed this process,
 *	for `server -fd`.
 */

int
ListenFdsCmd(ClientData, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    if (objc != 1) {
	Tcl_WrongNumArgs(interp, 1, objv, nullptr);
	return TCL_ERROR;
    }
    Tcl_Obj *list = Tcl_NewListObj(0, nullptr);
    for (int fd : SystemdListenFds()) {
	Tcl_ListObjAppendElement(nullptr, list, Tcl_NewIntObj(fd));
    }
    Tcl_SetObjResult(interp, list);
    return TCL_OK;
}

/*
 * A command waiting for a channel to close (see OnCloseCmd).
 */
struct CloseWatch {
    Tcl_Interp *interp;	/* Preserved until the command has run. */
    Tcl_Obj *cmd;
};

/*
 * RunCloseWatch --
 *	Idle callback after a watched channel closed: evaluates the command
 *	at global level (an error is a background error), unless its interp
 *	is being deleted, and frees the watch.
 */

void
RunCloseWatch(ClientData clientData)
{
    std::unique_ptr<CloseWatch> watch(static_cast<CloseWatch *>(clientData));
    Tcl_Interp *interp = watch->interp;
    if (!Tcl_InterpDeleted(interp)) {
	int code = Tcl_EvalObjEx(interp, watch->cmd, TCL_EVAL_GLOBAL);
	if (code != TCL_OK) {
	    Tcl_BackgroundException(interp, code);
	}
    }
    Tcl_DecrRefCount(watch->cmd);
    Tcl_Release(interp);
}

/*
 * ChannelClosedForWatch --
 *	Close handler: the channel is going, so nothing may run on it now;
 *	the command runs from the event loop once it is gone.
 */

void
ChannelClosedForWatch(ClientData clientData)
{
    Tcl_DoWhenIdle(RunCloseWatch, clientData);
}

/*
 * OnCloseCmd --
 *	::socketserver::onclose chan cmd: evaluates cmd at global level, from
 *	the event loop, once chan has been closed, wherever it is closed
 *	from. What a pool uses to count a connection until it is closed.
 */

int
OnCloseCmd(ClientData, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    if (objc != 3) {
	Tcl_WrongNumArgs(interp, 1, objv, "channelId command");
	return TCL_ERROR;
    }
    Tcl_Channel chan = Tcl_GetChannel(interp, Tcl_GetString(objv[1]),
	    nullptr);
    if (!chan) {
	return TCL_ERROR;
    }
    auto watch = std::make_unique<CloseWatch>(CloseWatch{interp, objv[2]});
    Tcl_IncrRefCount(objv[2]);
    Tcl_Preserve(interp);
    Tcl_CreateCloseHandler(chan, ChannelClosedForWatch, watch.release());
    return TCL_OK;
}

/*
 * LookUpServer --
 *	The server named by an optional port or path argument (default: the
 *	first). Expects the registry lock. Returns nullptr with an error in
 *	interp.
 */

Server *
LookUpServer(Tcl_Interp *interp, Registry &r, int objc, Tcl_Obj *const objv[],
	const char *usage)
{
    if (objc > 3) {
	Tcl_WrongNumArgs(interp, 2, objv, usage);
	return nullptr;
    }
    ServerName name;
    if (objc == 3) {
	if (GetServerName(interp, objv[2], name) != TCL_OK) {
	    return nullptr;
	}
	return r.FindByName(interp, name);
    }
    Server *server = r.First();
    if (!server) {
	Tcl_SetObjResult(interp, Tcl_NewStringObj(
		"no socketserver is open", -1));
	Tcl_SetErrorCode(interp, "SOCKETSERVER", "NOSERVER", nullptr);
    }
    return server;
}

/*
 * CloseCmd --
 *	close ?port?: stops the dispatcher and closes the listeners (in a
 *	forked child: this process's copies only). Connections already
 *	handed over are untouched.
 */

int
CloseCmd(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    Registry &r = Registry::Get();
    uint64_t id;
    {
	std::lock_guard<std::mutex> lock(r.Mutex());
	Server *server = LookUpServer(interp, r, objc, objv, "?port?");
	if (!server) {
	    return TCL_ERROR;
	}
	id = r.IdOf(server);
	r.Remove(id);		/* Joins the dispatcher, under the lock. */
    }
    ForgetWorkerLink(interp, id);
    return TCL_OK;
}

void
PutCount(Tcl_Obj *dict, const char *key, uint64_t value)
{
    Tcl_DictObjPut(nullptr, dict, Tcl_NewStringObj(key, -1),
	    Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(value)));
}

/*
 * InfoCmd --
 *	info ?port?: a dict of the server's state, read from counters the
 *	dispatcher shares with forked workers. No syscalls; cheap.
 */

int
InfoCmd(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    Registry &r = Registry::Get();
    std::lock_guard<std::mutex> lock(r.Mutex());
    Server *server = LookUpServer(interp, r, objc, objv, "?port?");
    if (!server) {
	return TCL_ERROR;
    }
    const Counters &c = server->Stats();
    Tcl_Obj *dict = Tcl_NewDictObj();
    PutCount(dict, "port", server->Port());
    Tcl_Obj *addresses = Tcl_NewListObj(0, nullptr);
    for (const std::string &a : server->Addresses()) {
	Tcl_ListObjAppendElement(nullptr, addresses,
		Tcl_NewStringObj(a.c_str(), -1));
    }
    Tcl_DictObjPut(nullptr, dict, Tcl_NewStringObj("address", -1),
	    addresses);
    PutCount(dict, "pid", server->OwnerPid());
    PutCount(dict, "workers", c.workers.load());
    PutCount(dict, "ready", c.ready.load());
    PutCount(dict, "pending", c.pending.load());
    PutCount(dict, "credits", c.credits.load());
    PutCount(dict, "held", c.held.load());
    PutCount(dict, "accepted", c.accepted.load());
    PutCount(dict, "dispatched", c.dispatched.load());
    PutCount(dict, "acked", c.acked.load());
    PutCount(dict, "redispatched", c.redispatched.load());
    PutCount(dict, "registered", c.registered.load());
    PutCount(dict, "accepterrors", c.acceptErrors.load());
    PutCount(dict, "rejected", c.rejected.load());
    PutCount(dict, "refused", c.refused.load());
    PutCount(dict, "proxyerrors", c.proxyErrors.load());
    Tcl_DictObjPut(nullptr, dict, Tcl_NewStringObj("control", -1),
	    Tcl_NewStringObj(server->ControlPath().c_str(), -1));
    Tcl_SetObjResult(interp, dict);
    return TCL_OK;
}

/*
 * SocketObjCmd --
 *	::socketserver::socket subcommand ?arg ...?
 */

int
SocketObjCmd(ClientData, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    static const char *const subcommands[] = {
	"client", "close", "info", "server", nullptr
    };
    enum { CMD_CLIENT, CMD_CLOSE, CMD_INFO, CMD_SERVER };

    if (objc < 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "subcommand ?arg ...?");
	return TCL_ERROR;
    }
    int index;
    if (Tcl_GetIndexFromObj(interp, objv[1], subcommands, "subcommand", 0,
	    &index) != TCL_OK) {
	return TCL_ERROR;
    }
    try {
	switch (index) {
	case CMD_CLIENT:
	    return ClientCmd(interp, objc, objv);
	case CMD_CLOSE:
	    return CloseCmd(interp, objc, objv);
	case CMD_INFO:
	    return InfoCmd(interp, objc, objv);
	case CMD_SERVER:
	    return ServerCmd(interp, objc, objv);
	}
    } catch (const std::exception &e) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("socketserver: %s", e.what()));
	Tcl_SetErrorCode(interp, "SOCKETSERVER", "INTERNAL", nullptr);
    }
    return TCL_ERROR;
}

} // namespace

} // namespace socketserver

/*
 * Socketserver_Init --
 *	Package entry point: creates ::socketserver::socket and the SWIG
 *	generated commands, and provides the package.
 */

extern "C" DLLEXPORT int
Socketserver_Init(Tcl_Interp *interp)
{
    if (Tcl_InitStubs(interp, "8.6-", 0) == nullptr) {
	return TCL_ERROR;
    }
#ifndef _WIN32
    if (SocketserverSwig_Init(interp) != TCL_OK) {
	return TCL_ERROR;		/* Passing descriptors: Unix only. */
    }
    Tcl_CreateObjCommand(interp, "::socketserver::watchstop",
	    socketserver::WatchStopCmd, nullptr, nullptr);
#endif
    Tcl_CreateObjCommand(interp, "::socketserver::socket",
	    socketserver::SocketObjCmd, nullptr, nullptr);
    Tcl_CreateObjCommand(interp, "::socketserver::listenfds",
	    socketserver::ListenFdsCmd, nullptr, nullptr);
    Tcl_CreateObjCommand(interp, "::socketserver::onclose",
	    socketserver::OnCloseCmd, nullptr, nullptr);
    return Tcl_PkgProvide(interp, "socketserver", PACKAGE_VERSION);
}

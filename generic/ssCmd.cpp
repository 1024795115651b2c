/*
 * ssCmd.cpp --
 *
 *	The ::socketserver::socket command (server, client, close, info) and
 *	Socketserver_Init.
 */

#include "ssRegistry.h"
#include "ssWorker.h"

#include <tcl.h>

#include <cerrno>
#include <string>

extern "C" int SocketserverSwig_Init(Tcl_Interp *interp);

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
    errno = error.posixError;
    const char *msg = Tcl_PosixError(interp);
    Tcl_SetObjResult(interp, Tcl_ObjPrintf("couldn't open socket: %s", msg));
    return TCL_ERROR;
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

int
MissingValue(Tcl_Interp *interp, Tcl_Obj *option)
{
    Tcl_SetObjResult(interp, Tcl_ObjPrintf("no argument given for %s option",
	    Tcl_GetString(option)));
    Tcl_SetErrorCode(interp, "TCL", "ARGUMENT", "MISSING", nullptr);
    return TCL_ERROR;
}

/*
 * ServerCmd --
 *	server ?-myaddr addr? ?-backlog n? ?-reuseport bool? port
 *	Binds and listens now; starts the dispatcher. Returns the port.
 */

int
ServerCmd(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    static const char *const options[] = {
	"-backlog", "-myaddr", "-reuseport", nullptr
    };
    enum { OPT_BACKLOG, OPT_MYADDR, OPT_REUSEPORT };

    if (objc < 3) {
	Tcl_WrongNumArgs(interp, 2, objv, "?-myaddr addr? ?-backlog n? "
		"?-reuseport bool? port");
	return TCL_ERROR;
    }
    ListenSpec spec;
    for (int i = 2; i < objc - 1; i += 2) {
	int index;
	if (Tcl_GetIndexFromObj(interp, objv[i], options, "option", 0,
		&index) != TCL_OK) {
	    return TCL_ERROR;
	}
	if (i + 1 >= objc - 1) {
	    return MissingValue(interp, objv[i]);
	}
	Tcl_Obj *value = objv[i + 1];
	int flag;
	switch (index) {
	case OPT_BACKLOG:
	    if (Tcl_GetIntFromObj(interp, value, &spec.backlog) != TCL_OK) {
		return TCL_ERROR;
	    }
	    if (spec.backlog < 1) {
		Tcl_SetObjResult(interp, Tcl_ObjPrintf("bad backlog \"%s\": "
			"must be a positive integer", Tcl_GetString(value)));
		Tcl_SetErrorCode(interp, "TCL", "VALUE", "BACKLOG", nullptr);
		return TCL_ERROR;
	    }
	    break;
	case OPT_MYADDR:
	    spec.host = Tcl_GetString(value);
	    break;
	case OPT_REUSEPORT:
	    if (Tcl_GetBooleanFromObj(interp, value, &flag) != TCL_OK) {
		return TCL_ERROR;
	    }
	    spec.reusePort = flag != 0;
	    break;
	}
    }
    if (GetPort(interp, objv[objc - 1], &spec.port) != TCL_OK) {
	return TCL_ERROR;
    }

    std::unique_ptr<Server> server;
    ListenError error;
    if (Server::Open(spec, server, error) != 0) {
	return SetOpenError(interp, error);
    }
    int port = server->Port();
    Registry &r = Registry::Get();
    std::lock_guard<std::mutex> lock(r.Mutex());
    r.Add(std::move(server));
    Tcl_SetObjResult(interp, Tcl_NewIntObj(port));
    return TCL_OK;
}

/*
 * ClientCmd --
 *	client ?-port port? handler
 */

int
ClientCmd(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    static const char *const options[] = {"-port", nullptr};

    if ((objc != 3 && objc != 5)
	    || (objc == 3 && std::string(Tcl_GetString(objv[2])) == "-port")) {
	if (objc == 4) {
	    int index;
	    if (Tcl_GetIndexFromObj(interp, objv[2], options, "option", 0,
		    &index) != TCL_OK) {
		return TCL_ERROR;
	    }
	}
	Tcl_WrongNumArgs(interp, 2, objv, "?-port port? handler");
	return TCL_ERROR;
    }
    std::optional<int> port;
    if (objc == 5) {
	int index, value;
	if (Tcl_GetIndexFromObj(interp, objv[2], options, "option", 0,
		&index) != TCL_OK
		|| GetPort(interp, objv[3], &value) != TCL_OK) {
	    return TCL_ERROR;
	}
	port = value;
    }
    return ArmWorker(interp, port, objv[objc - 1]);
}

/*
 * LookUpServer --
 *	The server named by an optional port argument (default: the first).
 *	Expects the registry lock. Returns nullptr with an error in interp.
 */

Server *
LookUpServer(Tcl_Interp *interp, Registry &r, int objc, Tcl_Obj *const objv[],
	const char *usage)
{
    if (objc > 3) {
	Tcl_WrongNumArgs(interp, 2, objv, usage);
	return nullptr;
    }
    int port = -1;
    if (objc == 3 && GetPort(interp, objv[2], &port) != TCL_OK) {
	return nullptr;
    }
    Server *server = port >= 0 ? r.FindByPort(port) : r.First();
    if (!server) {
	if (port >= 0) {
	    Tcl_SetObjResult(interp, Tcl_ObjPrintf(
		    "no socketserver on port %d", port));
	    Tcl_SetErrorCode(interp, "SOCKETSERVER", "NOSERVER",
		    std::to_string(port).c_str(), nullptr);
	} else {
	    Tcl_SetObjResult(interp, Tcl_NewStringObj(
		    "no socketserver is open", -1));
	    Tcl_SetErrorCode(interp, "SOCKETSERVER", "NOSERVER", nullptr);
	}
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
    PutCount(dict, "accepted", c.accepted.load());
    PutCount(dict, "dispatched", c.dispatched.load());
    PutCount(dict, "acked", c.acked.load());
    PutCount(dict, "redispatched", c.redispatched.load());
    PutCount(dict, "registered", c.registered.load());
    PutCount(dict, "accepterrors", c.acceptErrors.load());
    PutCount(dict, "rejected", c.rejected.load());
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
    if (Tcl_InitStubs(interp, "8.6", 0) == nullptr) {
	return TCL_ERROR;
    }
    if (SocketserverSwig_Init(interp) != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_CreateObjCommand(interp, "::socketserver::socket",
	    socketserver::SocketObjCmd, nullptr, nullptr);
    return Tcl_PkgProvide(interp, "socketserver", PACKAGE_VERSION);
}

/*
 * ssUnixTcl.cpp --
 *
 *	The Unix side of the Tcl glue that differs by platform: SocketWatch
 *	is a Tcl file handler, and ::socketserver::watchstop takes SIGTERM
 *	and SIGINT in a thread of its own.
 */

#include "ssTclUtil.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <pthread.h>
#include <unistd.h>

namespace socketserver {

int
SocketWatch::Start(int fd, Tcl_FileProc *proc, ClientData clientData)
{
    Stop();
    Tcl_CreateFileHandler(fd, TCL_READABLE, proc, clientData);
    fd_ = fd;
    return 0;
}

void
SocketWatch::Stop()
{
    if (fd_ >= 0) {
	Tcl_DeleteFileHandler(fd_);
	fd_ = -1;
    }
}

/*
 * ::socketserver::watchstop ms script | off
 *
 * SIGTERM and SIGINT, which the caller keeps blocked in every thread (the
 * prefork pool does), are taken by a thread of this package with
 * sigtimedwait. Each one queues "{*}script SIGNAME" to the calling
 * thread's event loop; and once ms have passed since the first, if the
 * process is still alive (its interp never got back to the event loop,
 * or its stop never finished), the thread ends the process with that
 * signal's default action. So a busy interp can no longer make a stop
 * request wait for good.
 */

namespace {

constexpr const char *kStopWatchKey = "socketserver::watchstop";

struct StopWatch {
    Tcl_Interp *interp = nullptr;
    Tcl_ThreadId owner = nullptr;
    Tcl_Obj *script = nullptr;
    int exitAfterMs = 0;
    Tcl_ThreadId thread = nullptr;
    int pid = 0;		/* The process the thread runs in. */
    std::atomic<bool> quit{false};
};

struct StopEvent {
    Tcl_Event header;		/* First: Tcl frees the event as this. */
    StopWatch *watch;
    int signo;
};

/*
 * RunStopScript --
 *	A queued signal, in the interp's thread: runs the script with the
 *	signal's name, at global level (an error is a background error).
 *	Returns 1: the event is done.
 */

int
RunStopScript(Tcl_Event *event, int)
{
    auto e = reinterpret_cast<StopEvent *>(event);
    StopWatch *w = e->watch;
    Tcl_Interp *interp = w->interp;
    Tcl_Obj *cmd = Tcl_DuplicateObj(w->script);
    Tcl_IncrRefCount(cmd);
    Tcl_ListObjAppendElement(nullptr, cmd,
	    Tcl_NewStringObj(Tcl_SignalId(e->signo), -1));
    Tcl_Preserve(interp);
    int code = Tcl_EvalObjEx(interp, cmd, TCL_EVAL_GLOBAL);
    if (code != TCL_OK) {
	Tcl_BackgroundException(interp, code);
    }
    Tcl_Release(interp);
    Tcl_DecrRefCount(cmd);
    return 1;
}

int
IsStopEventOf(Tcl_Event *event, ClientData clientData)
{
    return event->proc == RunStopScript
	    && reinterpret_cast<StopEvent *>(event)->watch == clientData;
}

/*
 * EndWithSignal --
 *	Ends the process as signo's default action does (a service manager
 *	sees a death by SIGTERM, its own stop); never returns.
 */

[[noreturn]] void
EndWithSignal(int signo)
{
    signal(signo, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    raise(signo);
    _exit(128 + signo);
}

Tcl_ThreadCreateType
WatchThread(ClientData clientData)
{
    auto w = static_cast<StopWatch *>(clientData);
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    int first = 0;
    auto deadline = std::chrono::steady_clock::time_point::max();
    while (!w->quit.load()) {
	timespec tick{0, 100 * 1000 * 1000};	/* How soon quit is seen. */
	int signo = sigtimedwait(&stops, nullptr, &tick);
	if (signo > 0) {
	    auto e = static_cast<StopEvent *>(
		    static_cast<void *>(Tcl_Alloc(sizeof(StopEvent))));
	    e->header.proc = RunStopScript;
	    e->header.nextPtr = nullptr;
	    e->watch = w;
	    e->signo = signo;
	    Tcl_ThreadQueueEvent(w->owner, &e->header, TCL_QUEUE_TAIL);
	    Tcl_ThreadAlert(w->owner);
	    if (!first) {
		first = signo;
		deadline = std::chrono::steady_clock::now()
			+ std::chrono::milliseconds(w->exitAfterMs);
	    }
	}
	if (first && std::chrono::steady_clock::now() >= deadline) {
	    EndWithSignal(first);
	}
    }
    Tcl_FinalizeThread();
    TCL_THREAD_CREATE_RETURN;
}

/*
 * StopWatching --
 *	Ends the watch thread (within its 100 ms tick), drops its queued
 *	events and frees it. The signals stay blocked. In a process forked
 *	since (a worker), the thread does not exist: only the memory goes.
 */

void
StopWatching(ClientData clientData, Tcl_Interp *)
{
    std::unique_ptr<StopWatch> w(static_cast<StopWatch *>(clientData));
    if (w->pid == getpid()) {
	w->quit.store(true);
	int result;
	Tcl_JoinThread(w->thread, &result);
    }
    Tcl_DeleteEvents(IsStopEventOf, w.get());
    Tcl_DecrRefCount(w->script);
}

} // namespace

int
WatchStopCmd(ClientData, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    if (objc == 2 && std::strcmp(Tcl_GetString(objv[1]), "off") == 0) {
	Tcl_DeleteAssocData(interp, kStopWatchKey);
	return TCL_OK;
    }
    int ms;
    if (objc != 3) {
	Tcl_WrongNumArgs(interp, 1, objv, "ms script | off");
	return TCL_ERROR;
    }
    if (Tcl_GetIntFromObj(interp, objv[1], &ms) != TCL_OK) {
	return TCL_ERROR;
    }
    if (ms < 0) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf(
		"bad time \"%d\": must be a non-negative integer", ms));
	Tcl_SetErrorCode(interp, "TCL", "VALUE", "TIME", nullptr);
	return TCL_ERROR;
    }
    Tcl_DeleteAssocData(interp, kStopWatchKey);
    auto w = std::make_unique<StopWatch>();
    w->interp = interp;
    w->owner = Tcl_GetCurrentThread();
    w->script = objv[2];
    Tcl_IncrRefCount(w->script);
    w->exitAfterMs = ms;
    w->pid = getpid();
    int code;
    {
	SignalBlock watchThreadTakesNone;	/* It only sigtimedwaits. */
	code = Tcl_CreateThread(&w->thread, WatchThread, w.get(),
		TCL_THREAD_STACK_DEFAULT, TCL_THREAD_JOINABLE);
    }
    if (code != TCL_OK) {
	Tcl_DecrRefCount(w->script);
	return SetPosixError(interp, "couldn't watch for stop signals",
		EAGAIN);
    }
    Tcl_SetAssocData(interp, kStopWatchKey, StopWatching, w.release());
    return TCL_OK;
}

} // namespace socketserver

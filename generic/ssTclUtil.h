/*
 * ssTclUtil.h --
 *
 *	Small pieces of Tcl glue used by the commands, the worker side and
 *	the SWIG layer alike.
 */

#ifndef SS_TCL_UTIL_H
#define SS_TCL_UTIL_H

#include "ssPlatform.h"

#include <tcl.h>

#include <string>

/* Tcl 9 counts in Tcl_Size; Tcl 8.6's headers count in int and lack it. */
#ifndef TCL_SIZE_MAX
typedef int Tcl_Size;
#endif

namespace socketserver {

/*
 * Leaves "what: message" in interp with errorCode POSIX (as Tcl's socket
 * command words its failures) for errno value err. Returns TCL_ERROR.
 */
int SetPosixError(Tcl_Interp *interp, const std::string &what, int err);

/*
 * Wraps a descriptor in an (unregistered) channel: a TCP socket becomes a
 * TCP channel, so -peername works; anything else (a Unix-domain socket, a
 * file, a pipe), for which Tcl's TCP options would read an address of the
 * wrong family, a file channel with the descriptor's own access mode. The
 * channel owns fd on success; on failure fd is untouched. Returns NULL on
 * failure.
 */
Tcl_Channel MakeChannelFor(UniqueFd &fd);

/*
 * SocketWatch: calls proc(clientData, TCL_READABLE) from the calling
 * thread's event loop while a socket is readable (or has hung up), until
 * Stop. It never reads the socket and never owns it. On Unix it is a Tcl
 * file handler; Tcl on Windows has none, so there a Tcl socket channel
 * over a duplicate of the socket carries its readiness. Implemented in
 * unix/ssUnixTcl.cpp and win/ssWinTcl.cpp.
 */
class SocketWatch {
public:
    SocketWatch() = default;
    SocketWatch(const SocketWatch &) = delete;
    SocketWatch &operator=(const SocketWatch &) = delete;
    ~SocketWatch() { Stop(); }

    int Start(int fd, Tcl_FileProc *proc, ClientData clientData); /* errno */
    void Stop();
    void Fire(int mask);		/* Windows: the channel's event. */

private:
    int fd_ = -1;
    Tcl_FileProc *proc_ = nullptr;	/* Windows only, with the two below: */
    ClientData clientData_ = nullptr;	/* Tcl's file handler keeps them */
    Tcl_Channel chan_ = nullptr;	/* on Unix. */
};

/* ::socketserver::watchstop (Unix only; unix/ssUnixTcl.cpp). */
int WatchStopCmd(ClientData clientData, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[]);

} // namespace socketserver

#endif /* SS_TCL_UTIL_H */

/*
 * ssUnixTcl.cpp --
 *
 *	The Unix side of the Tcl glue that differs by platform: SocketWatch
 *	is a Tcl file handler.
 */

#include "ssTclUtil.h"

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

} // namespace socketserver

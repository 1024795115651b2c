/*
 * ssTclUtil.cpp --
 *
 *	Tcl glue shared by the commands, the worker side and the SWIG layer.
 */

#include "ssTclUtil.h"

#include <cerrno>

namespace socketserver {

int
SetPosixError(Tcl_Interp *interp, const std::string &what, int err)
{
    Tcl_SetErrno(err);		/* Tcl's C library may not be ours. */
    const char *msg = Tcl_PosixError(interp);
    Tcl_SetObjResult(interp, Tcl_ObjPrintf("%s: %s", what.c_str(), msg));
    return TCL_ERROR;
}

Tcl_Channel
MakeChannelFor(UniqueFd &fd)
{
    ClientData handle =
	    reinterpret_cast<ClientData>(static_cast<intptr_t>(fd.Get()));
    Tcl_Channel chan;
    if (IsInetSocket(fd.Get())) {
	chan = Tcl_MakeTcpClientChannel(handle);
    } else {
	bool readable = false, writable = false;
	OpenModeOf(fd.Get(), readable, writable);
	chan = Tcl_MakeFileChannel(handle,
		(readable ? TCL_READABLE : 0) | (writable ? TCL_WRITABLE : 0));
    }
    if (chan) {
	fd.Release();
    }
    return chan;
}

} // namespace socketserver

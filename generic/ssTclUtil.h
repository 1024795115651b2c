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

} // namespace socketserver

#endif /* SS_TCL_UTIL_H */

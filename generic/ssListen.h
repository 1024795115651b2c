/*
 * ssListen.h --
 *
 *	The socket code every platform shares (generic/ssListen.cpp), as
 *	Tcl's tclIOSock.c is to tclUnixSock.c and tclWinSock.c: resolving
 *	and binding TCP listeners, and writing socket addresses as text. It
 *	calls the platform through ssPlatform.h (StartNetwork, BindListener).
 */

#ifndef SS_LISTEN_H
#define SS_LISTEN_H

#include "ssPlatform.h"

#include <string>
#include <vector>

struct sockaddr;			/* The system's socket address. */

namespace socketserver {

/*
 * The reason OpenListeners failed: an errno value, or a resolver failure
 * with its message.
 */
struct ListenError {
    int posixError = 0;
    std::string resolverMessage;
};

/*
 * Resolves spec.host into spec.addresses, numeric, so that opening the
 * listeners later (under a lock) looks up no name. Returns 0, or nonzero
 * with error filled.
 */
int ResolveListenHost(ListenSpec &spec, ListenError &error);

/*
 * Every listener for spec, on one port: on spec.addresses when there are
 * any, else on each address spec.host resolves to then. Returns 0, or
 * nonzero with error filled.
 */
int OpenListeners(const ListenSpec &spec, std::vector<Listener> &out,
	ListenError &error);

/*
 * A socket address as numeric text, an IPv4-mapped IPv6 address written
 * as plain IPv4; sets port.
 */
std::string FormatAddress(const sockaddr *addr, int &port);

} // namespace socketserver

#endif /* SS_LISTEN_H */

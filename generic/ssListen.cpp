/*
 * ssListen.cpp --
 *
 *	What listening on TCP takes on every platform alike: resolving the
 *	address and binding everything it resolves to on one port, and
 *	writing socket addresses as text. The system calls themselves
 *	(StartNetwork, BindListener) are in unix/ and win/.
 */

#include "ssListen.h"

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include <cerrno>
#include <cstring>

namespace socketserver {

std::string
FormatAddress(const sockaddr *sa, int &port)
{
    char host[INET6_ADDRSTRLEN] = "";

    port = 0;
    if (sa->sa_family == AF_INET) {
	auto sin = reinterpret_cast<const sockaddr_in *>(sa);
	inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
	port = ntohs(sin->sin_port);
    } else if (sa->sa_family == AF_INET6) {
	auto sin6 = reinterpret_cast<const sockaddr_in6 *>(sa);
	port = ntohs(sin6->sin6_port);
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
	    inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], host,
		    sizeof(host));
	} else {
	    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
	}
    }
    return host;
}

/* One address to bind, as the resolver gave it. */
struct Resolved {
    sockaddr_storage addr;
    size_t len;
};

/*
 * ResolveInto --
 *	Appends the IPv4 and IPv6 addresses host names (every local address
 *	when empty; with numeric, only a numeric address, looked up
 *	nowhere) to out. Returns 0, or -1 / errno with error set.
 */

static int
ResolveInto(const std::string &host, bool numeric, std::vector<Resolved> &out,
	ListenError &error)
{
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
	    | (numeric ? AI_NUMERICHOST : 0);
    addrinfo *res = nullptr;
    int gai = getaddrinfo(host.empty() ? nullptr : host.c_str(), "0",
	    &hints, &res);
    if (gai != 0) {
#ifdef EAI_SYSTEM
	if (gai == EAI_SYSTEM) {
	    error.posixError = errno;
	    return -1;
	}
#endif
	error.resolverMessage = gai_strerror(gai);
	return -1;
    }
    for (const addrinfo *ai = res; ai; ai = ai->ai_next) {
	if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
		&& ai->ai_addrlen <= sizeof(sockaddr_storage)) {
	    Resolved r{};
	    std::memcpy(&r.addr, ai->ai_addr, ai->ai_addrlen);
	    r.len = ai->ai_addrlen;
	    out.push_back(r);
	}
    }
    freeaddrinfo(res);
    return 0;
}

int
ResolveListenHost(ListenSpec &spec, ListenError &error)
{
    spec.addresses.clear();
    if (spec.host.empty()) {
	return 0;		/* The wildcard: nothing to look up. */
    }
    int result = StartNetwork();
    if (result) {
	error.posixError = result;
	return result;
    }
    std::vector<Resolved> found;
    if (ResolveInto(spec.host, false, found, error)) {
	return -1;
    }
    for (const Resolved &r : found) {
	int port;
	spec.addresses.push_back(FormatAddress(
		reinterpret_cast<const sockaddr *>(&r.addr), port));
    }
    return 0;
}

/*
 * BindResolved --
 *	Binds one resolved address on port (0: any). Returns 0 or errno.
 */

static int
BindResolved(const Resolved &r, int port, const ListenSpec &spec,
	Listener &listener)
{
    sockaddr_storage addr = r.addr;
    if (addr.ss_family == AF_INET) {
	reinterpret_cast<sockaddr_in *>(&addr)->sin_port = htons(port);
    } else {
	reinterpret_cast<sockaddr_in6 *>(&addr)->sin6_port = htons(port);
    }
    return BindListener(reinterpret_cast<sockaddr *>(&addr), r.len, spec,
	    listener);
}

/*
 * OpenListeners --
 *	Binds every address of spec (see ResolveListenHost), all on one
 *	port. With port 0 the first bind picks the port and the rest follow
 *	it; if a later family finds that port taken, the whole set is tried
 *	again. An address family the system lacks is skipped; any other
 *	failure is the result.
 *
 * Results:
 *	0, or the errno / resolver failure in error; out holds the sockets.
 */

int
OpenListeners(const ListenSpec &spec, std::vector<Listener> &out,
	ListenError &error)
{
    int result = StartNetwork();
    if (result) {
	error.posixError = result;
	return result;
    }
    std::vector<Resolved> res;
    if (spec.addresses.empty()) {
	result = ResolveInto(spec.host, false, res, error);
    }
    for (const std::string &a : spec.addresses) {
	if (!result) {
	    result = ResolveInto(a, true, res, error);
	}
    }
    if (result) {
	return result;
    }

    for (int attempt = 0; attempt < 5; attempt++) {
	out.clear();
	int port = spec.port;
	result = 0;
	for (const Resolved &r : res) {
	    Listener listener;
	    int err = BindResolved(r, port, spec, listener);
	    if (err == EAFNOSUPPORT || err == EADDRNOTAVAIL) {
		if (result == 0) {
		    result = err;	/* Kept only if nothing binds. */
		}
		continue;
	    }
	    if (err) {
		result = err;
		out.clear();
		break;
	    }
	    port = listener.port;
	    out.push_back(std::move(listener));
	}
	if (!out.empty()) {
	    result = 0;
	}
	if (!(result == EADDRINUSE && spec.port == 0)) {
	    break;
	}
    }
    if (out.empty() && result == 0) {
	result = EADDRNOTAVAIL;
    }
    error.posixError = result;
    return result;
}

} // namespace socketserver

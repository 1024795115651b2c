/*
 * ssProxy.h --
 *
 *	The PROXY protocol (HAProxy's, versions 1 and 2) header parser: pure
 *	code over a byte buffer, no sockets, so it can be unit-tested and
 *	fuzzed alone. The dispatcher peeks at a new connection's first bytes,
 *	asks this parser whether they hold a whole header, and then reads
 *	exactly that many bytes, so the stream the handler reads starts right
 *	after the header.
 */

#ifndef SS_PROXY_H
#define SS_PROXY_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace socketserver {

/* The largest header accepted: v1's 107 bytes, or v2 with modest TLVs. */
constexpr size_t kMaxProxyHeader = 1024;

enum class ProxyStatus {
    NeedMore,		/* A valid prefix; wait for more bytes. */
    Done,		/* A whole header of headerLen bytes. */
    Invalid,		/* Not a PROXY header, malformed or too long. */
};

struct ProxyHeader {
    size_t headerLen = 0;
    bool hasAddress = false;	/* false: LOCAL / UNKNOWN, keep the peer. */
    std::string address;	/* The original client, numeric. */
    int port = 0;
};

ProxyStatus ParseProxyHeader(const uint8_t *data, size_t len,
	ProxyHeader &out);

/*
 * AddressFilter: a list of addresses and networks ("127.0.0.0/8", "::1",
 * "10.1.2.3") that a peer's numeric address is checked against.
 */
class AddressFilter {
public:
    /* Adds one entry. Returns false if it is not an address or network. */
    bool Add(const std::string &entry);
    bool Matches(const std::string &address) const;
private:
    struct Net {
	int family;
	uint8_t bytes[16];
	int prefixBits;
    };
    std::vector<Net> nets_;
};

} // namespace socketserver

#endif /* SS_PROXY_H */

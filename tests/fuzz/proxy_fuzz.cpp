/*
 * proxy_fuzz.cpp --
 *
 *	libFuzzer target for the PROXY protocol header parser
 *	(generic/ssProxy.h), with AddressSanitizer and UBSan: `make fuzz`.
 *	Besides not crashing, the parser must keep what the dispatcher
 *	relies on:
 *	  - Done: 0 < headerLen <= min(input, kMaxProxyHeader); a port in
 *	    0..65535; an address, if any, that is a numeric IPv4 or IPv6
 *	    address; the header alone parses to the same result; one byte
 *	    less is NeedMore (the dispatcher reads exactly headerLen bytes
 *	    and never a byte of the client's stream).
 *	  - NeedMore: never for kMaxProxyHeader bytes or more (a peer cannot
 *	    make the dispatcher wait on an endless header).
 *	  - Any status: the same input gives the same answer again, and a
 *	    status for a prefix is consistent with the whole (a prefix of a
 *	    Done or NeedMore input is never Invalid).
 *	The input's first byte, when odd, instead drives AddressFilter: the
 *	rest is "entry\0address".
 *
 *	A crash found here is saved by libFuzzer as crash-<sha1>; copy it to
 *	tests/fuzz/corpus/ so that the unit test ProxyCorpus runs it on every
 *	`make test`, and add a named GoogleTest case in tests/unit/proxy_test.cpp.
 */

#include "ssProxy.h"

#include <arpa/inet.h>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

using socketserver::AddressFilter;
using socketserver::kMaxProxyHeader;
using socketserver::ParseProxyHeader;
using socketserver::ProxyHeader;
using socketserver::ProxyStatus;

namespace {

void
Check(bool ok)
{
    if (!ok) {
	std::abort();
    }
}

bool
IsNumericAddress(const std::string &s)
{
    unsigned char bin[16];
    return inet_pton(AF_INET, s.c_str(), bin) == 1
	    || inet_pton(AF_INET6, s.c_str(), bin) == 1;
}

bool
Same(const ProxyHeader &a, const ProxyHeader &b)
{
    return a.headerLen == b.headerLen && a.hasAddress == b.hasAddress
	    && a.address == b.address && a.port == b.port;
}

void
FuzzParser(const uint8_t *data, size_t size)
{
    ProxyHeader out;
    ProxyStatus status = ParseProxyHeader(data, size, out);

    ProxyHeader again;
    Check(ParseProxyHeader(data, size, again) == status);
    if (status == ProxyStatus::Done) {
	Check(Same(out, again));
    }

    switch (status) {
    case ProxyStatus::Done: {
	Check(out.headerLen > 0 && out.headerLen <= size
		&& out.headerLen <= kMaxProxyHeader);
	Check(out.port >= 0 && out.port <= 65535);
	Check(!out.hasAddress || IsNumericAddress(out.address));
	Check(out.hasAddress || out.address.empty());
	ProxyHeader alone;
	Check(ParseProxyHeader(data, out.headerLen, alone)
		== ProxyStatus::Done);
	Check(Same(out, alone));
	ProxyHeader shorter;
	Check(ParseProxyHeader(data, out.headerLen - 1, shorter)
		== ProxyStatus::NeedMore);
	break;
    }
    case ProxyStatus::NeedMore:
	Check(size < kMaxProxyHeader);
	break;
    case ProxyStatus::Invalid:
	break;
    }

    /* A prefix of something that is not (yet) refused is not refused. */
    if (status != ProxyStatus::Invalid && size > 0) {
	ProxyHeader prefix;
	size_t cut = size / 2;
	if (status == ProxyStatus::Done && cut >= out.headerLen) {
	    cut = out.headerLen - 1;
	}
	Check(ParseProxyHeader(data, cut, prefix) != ProxyStatus::Invalid);
    }
}

void
FuzzFilter(const uint8_t *data, size_t size)
{
    const char *p = reinterpret_cast<const char *>(data);
    const void *nul = std::memchr(p, '\0', size);
    size_t entryLen = nul ? static_cast<const char *>(nul) - p : size;
    std::string entry(p, entryLen);
    std::string address = nul ? std::string(p + entryLen + 1,
	    size - entryLen - 1) : std::string();

    AddressFilter filter;
    bool added = filter.Add(entry);
    bool matches = filter.Matches(address);
    Check(added || !matches);		/* An empty filter matches nothing. */
    if (added && entry.find('/') == std::string::npos) {
	Check(filter.Matches(entry));	/* An address matches itself. */
    }
    if (matches) {
	Check(IsNumericAddress(address));
    }
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && (data[0] & 1) && data[0] != '\r') {
	FuzzFilter(data + 1, size - 1);
    }
    FuzzParser(data, size);
    return 0;
}

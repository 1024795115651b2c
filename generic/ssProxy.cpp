/*
 * ssProxy.cpp --
 *
 *	PROXY protocol v1 ("PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n") and v2
 *	(binary, 12-byte signature) parsing, as HAProxy's proxy-protocol.txt
 *	specifies them.
 */

#include "ssProxy.h"

#ifdef _WIN32
#include <ws2tcpip.h>		/* inet_pton, inet_ntop */
#else
#include <arpa/inet.h>
#endif
#include <cstring>
#include <vector>

namespace socketserver {

namespace {

constexpr uint8_t kV2Signature[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};
constexpr char kV1Prefix[] = "PROXY ";
constexpr size_t kV1Max = 107;		/* The spec's bound, CRLF included. */

/* Whether data[0..len) could still become prefix (or already is). */
bool
MatchesPrefix(const uint8_t *data, size_t len, const void *prefix,
	size_t prefixLen)
{
    return std::memcmp(data, prefix, len < prefixLen ? len : prefixLen) == 0;
}

std::vector<std::string>
SplitSpaces(const std::string &line)
{
    std::vector<std::string> words;
    size_t start = 0;
    for (;;) {
	size_t space = line.find(' ', start);
	words.push_back(line.substr(start, space - start));
	if (space == std::string::npos) {
	    return words;
	}
	start = space + 1;
    }
}

/* A decimal port 0..65535 with no sign, no leading zero, nothing else. */
bool
ParsePort(const std::string &s, int &port)
{
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) {
	return false;
    }
    port = 0;
    for (char c : s) {
	if (c < '0' || c > '9') {
	    return false;
	}
	port = port * 10 + (c - '0');
    }
    return port <= 65535;
}

/* A numeric address of the family, written back in canonical form. */
bool
CanonicalAddress(int family, const std::string &s, std::string &out)
{
    unsigned char bin[16];
    char text[INET6_ADDRSTRLEN];
    if (inet_pton(family, s.c_str(), bin) != 1
	    || !inet_ntop(family, bin, text, sizeof(text))) {
	return false;
    }
    out = text;
    return true;
}

ProxyStatus
ParseV1(const uint8_t *data, size_t len, ProxyHeader &out)
{
    size_t limit = len < kV1Max ? len : kV1Max;
    const uint8_t *lf = static_cast<const uint8_t *>(
	    std::memchr(data, '\n', limit));
    if (!lf) {
	return len >= kV1Max ? ProxyStatus::Invalid : ProxyStatus::NeedMore;
    }
    size_t lineLen = lf - data;	/* Up to, not including, the LF. */
    if (lineLen == 0 || data[lineLen - 1] != '\r') {
	return ProxyStatus::Invalid;
    }
    std::string line(reinterpret_cast<const char *>(data), lineLen - 1);
    if (line.find('\0') != std::string::npos) {
	return ProxyStatus::Invalid;
    }
    std::vector<std::string> w = SplitSpaces(line);
    out = ProxyHeader{};
    out.headerLen = lineLen + 1;
    if (w.size() >= 2 && w[0] == "PROXY" && w[1] == "UNKNOWN") {
	return ProxyStatus::Done;	/* The rest of the line is ignored. */
    }
    if (w.size() != 6 || w[0] != "PROXY") {
	return ProxyStatus::Invalid;
    }
    int family;
    if (w[1] == "TCP4") {
	family = AF_INET;
    } else if (w[1] == "TCP6") {
	family = AF_INET6;
    } else {
	return ProxyStatus::Invalid;
    }
    std::string dst;
    int dstPort;
    if (!CanonicalAddress(family, w[2], out.address)
	    || !CanonicalAddress(family, w[3], dst)
	    || !ParsePort(w[4], out.port) || !ParsePort(w[5], dstPort)) {
	return ProxyStatus::Invalid;
    }
    out.hasAddress = true;
    return ProxyStatus::Done;
}

ProxyStatus
ParseV2(const uint8_t *data, size_t len, ProxyHeader &out)
{
    if (len < 16) {
	return ProxyStatus::NeedMore;
    }
    uint8_t verCmd = data[12], famProto = data[13];
    size_t bodyLen = (static_cast<size_t>(data[14]) << 8) | data[15];
    if ((verCmd & 0xF0) != 0x20 || (verCmd & 0x0F) > 1
	    || 16 + bodyLen > kMaxProxyHeader) {
	return ProxyStatus::Invalid;
    }
    if (len < 16 + bodyLen) {
	return ProxyStatus::NeedMore;
    }
    out = ProxyHeader{};
    out.headerLen = 16 + bodyLen;
    if ((verCmd & 0x0F) == 0) {
	return ProxyStatus::Done;	/* LOCAL: a health check. */
    }
    const uint8_t *body = data + 16;
    char text[INET6_ADDRSTRLEN];
    switch (famProto) {
    case 0x11:				/* TCP over IPv4 */
	if (bodyLen < 12) {
	    return ProxyStatus::Invalid;
	}
	inet_ntop(AF_INET, body, text, sizeof(text));
	out.port = (body[8] << 8) | body[9];
	break;
    case 0x21:				/* TCP over IPv6 */
	if (bodyLen < 36) {
	    return ProxyStatus::Invalid;
	}
	inet_ntop(AF_INET6, body, text, sizeof(text));
	out.port = (body[32] << 8) | body[33];
	break;
    case 0x00:				/* UNSPEC: keep the real peer. */
	return ProxyStatus::Done;
    default:
	return ProxyStatus::Invalid;	/* UDP or AF_UNIX: not for TCP. */
    }
    out.address = text;
    out.hasAddress = true;
    return ProxyStatus::Done;
}

} // namespace

/*
 * ParseProxyHeader --
 *	Decides, from the first len bytes of a connection, whether they start
 *	with a PROXY v1 or v2 header.
 *
 * Results:
 *	NeedMore while they are a valid, incomplete prefix; Done with out
 *	filled; Invalid for anything else (including a header that would be
 *	longer than kMaxProxyHeader).
 */

ProxyStatus
ParseProxyHeader(const uint8_t *data, size_t len, ProxyHeader &out)
{
    if (len == 0) {
	return ProxyStatus::NeedMore;
    }
    if (MatchesPrefix(data, len, kV2Signature, sizeof(kV2Signature))) {
	return len < sizeof(kV2Signature) ? ProxyStatus::NeedMore
		: ParseV2(data, len, out);
    }
    if (MatchesPrefix(data, len, kV1Prefix, sizeof(kV1Prefix) - 1)) {
	return len < sizeof(kV1Prefix) - 1 ? ProxyStatus::NeedMore
		: ParseV1(data, len, out);
    }
    return ProxyStatus::Invalid;
}

bool
AddressFilter::Add(const std::string &entry)
{
    Net net{};
    std::string address = entry;
    size_t slash = entry.find('/');
    int maxBits;
    if (slash != std::string::npos) {
	address = entry.substr(0, slash);
    }
    if (inet_pton(AF_INET, address.c_str(), net.bytes) == 1) {
	net.family = AF_INET;
	maxBits = 32;
    } else if (inet_pton(AF_INET6, address.c_str(), net.bytes) == 1) {
	net.family = AF_INET6;
	maxBits = 128;
    } else {
	return false;
    }
    net.prefixBits = maxBits;
    if (slash != std::string::npos) {
	int bits;
	if (!ParsePort(entry.substr(slash + 1), bits) || bits > maxBits) {
	    return false;
	}
	net.prefixBits = bits;
    }
    nets_.push_back(net);
    return true;
}

bool
AddressFilter::Matches(const std::string &address) const
{
    uint8_t bytes[16];
    int family;
    if (inet_pton(AF_INET, address.c_str(), bytes) == 1) {
	family = AF_INET;
    } else if (inet_pton(AF_INET6, address.c_str(), bytes) == 1) {
	family = AF_INET6;
    } else {
	return false;
    }
    for (const Net &net : nets_) {
	if (net.family != family) {
	    continue;
	}
	int full = net.prefixBits / 8, rest = net.prefixBits % 8;
	if (std::memcmp(net.bytes, bytes, full) != 0) {
	    continue;
	}
	if (rest == 0 || ((net.bytes[full] ^ bytes[full])
		& (0xFF << (8 - rest))) == 0) {
	    return true;
	}
    }
    return false;
}

} // namespace socketserver

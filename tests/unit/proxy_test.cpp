/*
 * proxy_test.cpp --
 *
 *	Unit tests for the PROXY protocol parser and the address filter
 *	(generic/ssProxy.h): v1 and v2 headers as HAProxy's
 *	proxy-protocol.txt writes them, every prefix of a header, the
 *	limits, what must be refused, and the seed corpus of the fuzz
 *	target (tests/fuzz/corpus) run through the same checks the fuzzer
 *	makes.
 */

#include "ssProxy.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using socketserver::AddressFilter;
using socketserver::kMaxProxyHeader;
using socketserver::ParseProxyHeader;
using socketserver::ProxyHeader;
using socketserver::ProxyStatus;

namespace {

using Bytes = std::vector<uint8_t>;

Bytes
FromString(const std::string &s)
{
    return Bytes(s.begin(), s.end());
}

/*
 * Appends bytes one by one (vector::insert here sets off a false
 * -Warray-bounds in GCC 12 at -O2).
 */
template <typename Container>
void
Append(Bytes &to, const Container &from)
{
    for (auto c : from) {
	to.push_back(static_cast<uint8_t>(c));
    }
}

ProxyStatus
Parse(const Bytes &b, ProxyHeader &out)
{
    return ParseProxyHeader(b.data(), b.size(), out);
}

ProxyStatus
Parse(const std::string &s, ProxyHeader &out)
{
    return Parse(FromString(s), out);
}

ProxyStatus
Parse(const std::string &s)
{
    ProxyHeader out;
    return Parse(s, out);
}

const Bytes kSig = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

/* A v2 header: signature, version/command, family/protocol, body. */
Bytes
V2(uint8_t verCmd, uint8_t famProto, const Bytes &body)
{
    Bytes b = kSig;
    b.push_back(verCmd);
    b.push_back(famProto);
    b.push_back(static_cast<uint8_t>(body.size() >> 8));
    b.push_back(static_cast<uint8_t>(body.size() & 0xFF));
    Append(b, body);
    return b;
}

/* The address block of TCP over IPv4, then optional TLV bytes. */
Bytes
Tcp4Body(const char *src, const char *dst, int sport, int dport,
	const Bytes &tlv = {})
{
    Bytes b(12);
    inet_pton(AF_INET, src, b.data());
    inet_pton(AF_INET, dst, b.data() + 4);
    b[8] = sport >> 8;
    b[9] = sport & 0xFF;
    b[10] = dport >> 8;
    b[11] = dport & 0xFF;
    Append(b, tlv);
    return b;
}

Bytes
Tcp6Body(const char *src, const char *dst, int sport, int dport)
{
    Bytes b(36);
    inet_pton(AF_INET6, src, b.data());
    inet_pton(AF_INET6, dst, b.data() + 16);
    b[32] = sport >> 8;
    b[33] = sport & 0xFF;
    b[34] = dport >> 8;
    b[35] = dport & 0xFF;
    return b;
}

Bytes
Tlv(uint8_t type, const std::string &value)
{
    Bytes b = {type, static_cast<uint8_t>(value.size() >> 8),
	static_cast<uint8_t>(value.size() & 0xFF)};
    Append(b, value);
    return b;
}

Bytes
Concat(Bytes a, const Bytes &b)
{
    Append(a, b);
    return a;
}

/*
 * Every proper prefix of a whole header is NeedMore: the dispatcher waits
 * for more bytes instead of refusing a header that arrives in pieces.
 */
void
ExpectPrefixesNeedMore(const Bytes &header)
{
    for (size_t n = 0; n < header.size(); n++) {
	ProxyHeader out;
	EXPECT_EQ(ParseProxyHeader(header.data(), n, out),
		ProxyStatus::NeedMore) << "prefix of " << n << " bytes";
    }
}

/*
 * The invariants the fuzz target checks, for any input: see
 * tests/fuzz/proxy_fuzz.cpp.
 */
void
CheckInvariants(const Bytes &in)
{
    ProxyHeader out;
    ProxyStatus status = Parse(in, out);
    if (status != ProxyStatus::Done) {
	return;
    }
    ASSERT_GT(out.headerLen, 0u);
    ASSERT_LE(out.headerLen, in.size());
    ASSERT_LE(out.headerLen, kMaxProxyHeader);
    ASSERT_GE(out.port, 0);
    ASSERT_LE(out.port, 65535);
    if (out.hasAddress) {
	unsigned char bin[16];
	ASSERT_TRUE(inet_pton(AF_INET, out.address.c_str(), bin) == 1
		|| inet_pton(AF_INET6, out.address.c_str(), bin) == 1)
		<< out.address;
    }
    ProxyHeader again;
    ASSERT_EQ(ParseProxyHeader(in.data(), out.headerLen, again),
	    ProxyStatus::Done);
    ASSERT_EQ(again.headerLen, out.headerLen);
    ASSERT_EQ(again.hasAddress, out.hasAddress);
    ASSERT_EQ(again.address, out.address);
    ASSERT_EQ(again.port, out.port);
    ProxyHeader shorter;
    ASSERT_EQ(ParseProxyHeader(in.data(), out.headerLen - 1, shorter),
	    ProxyStatus::NeedMore);
}

} // namespace

/*
 * Version 1.
 */

TEST(ProxyV1, Tcp4)
{
    ProxyHeader h;
    std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\n";
    ASSERT_EQ(Parse(line, h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, line.size());
    EXPECT_TRUE(h.hasAddress);
    EXPECT_EQ(h.address, "192.0.2.7");
    EXPECT_EQ(h.port, 51234);
}

TEST(ProxyV1, BytesAfterTheHeaderAreNotPartOfIt)
{
    ProxyHeader h;
    std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r\n";
    ASSERT_EQ(Parse(line + "GET / HTTP/1.0\r\n\r\n", h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, line.size());
    ASSERT_EQ(Parse(line + line, h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, line.size());
}

TEST(ProxyV1, Tcp6IsWrittenBackCanonical)
{
    ProxyHeader h;
    ASSERT_EQ(Parse("PROXY TCP6 2001:0DB8:0000:0000:0000:0000:0000:0007 "
	    "::1 40000 443\r\n", h), ProxyStatus::Done);
    EXPECT_EQ(h.address, "2001:db8::7");
    EXPECT_EQ(h.port, 40000);
}

TEST(ProxyV1, PortLimits)
{
    ProxyHeader h;
    ASSERT_EQ(Parse("PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", h),
	    ProxyStatus::Done);
    EXPECT_EQ(h.port, 0);
    ASSERT_EQ(Parse("PROXY TCP4 1.2.3.4 5.6.7.8 65535 0\r\n", h),
	    ProxyStatus::Done);
    EXPECT_EQ(h.port, 65535);
}

TEST(ProxyV1, UnknownKeepsThePeer)
{
    ProxyHeader h;
    h.hasAddress = true;		/* Stale: must be cleared. */
    h.address = "10.0.0.1";
    ASSERT_EQ(Parse("PROXY UNKNOWN\r\n", h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, 15u);
    EXPECT_FALSE(h.hasAddress);
    EXPECT_EQ(h.address, "");
    /* The rest of an UNKNOWN line is ignored, whatever it holds. */
    ASSERT_EQ(Parse("PROXY UNKNOWN ffff:f::: nonsense 99999\r\n", h),
	    ProxyStatus::Done);
    EXPECT_FALSE(h.hasAddress);
}

TEST(ProxyV1, EveryPrefixNeedsMore)
{
    ExpectPrefixesNeedMore(FromString(
	    "PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\n"));
    ExpectPrefixesNeedMore(FromString("PROXY UNKNOWN\r\n"));
}

TEST(ProxyV1, LengthLimitIs107Bytes)
{
    std::string l107 = "PROXY UNKNOWN " + std::string(91, 'x') + "\r\n";
    ASSERT_EQ(l107.size(), 107u);
    ProxyHeader h;
    ASSERT_EQ(Parse(l107, h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, 107u);

    std::string l108 = "PROXY UNKNOWN " + std::string(92, 'x') + "\r\n";
    EXPECT_EQ(Parse(l108), ProxyStatus::Invalid);

    /* No line end yet: wait up to 106 bytes, refuse at 107. */
    EXPECT_EQ(Parse("PROXY TCP4 " + std::string(95, '1')),
	    ProxyStatus::NeedMore);
    EXPECT_EQ(Parse("PROXY TCP4 " + std::string(96, '1')),
	    ProxyStatus::Invalid);
    EXPECT_EQ(Parse("PROXY TCP4 " + std::string(500, '1')),
	    ProxyStatus::Invalid);
}

TEST(ProxyV1, LongestRealHeaderFits)
{
    std::string full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    std::string line = "PROXY TCP6 " + full + " " + full
	    + " 65535 65535\r\n";
    ProxyHeader h;
    ASSERT_EQ(Parse(line, h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, line.size());
    EXPECT_EQ(h.address, full);
}

TEST(ProxyV1, Malformed)
{
    const char *bad[] = {
	"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\n",	/* LF only */
	"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\r\n",
	"PROXY TCP4 192.0.2.7 198.51.100.1 51234\r\n",	/* 5 words */
	"PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n",	/* 7 words */
	"PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n",	/* two spaces */
	"PROXY TCP4 192.0.2.7 198.51.100.1 1 2 \r\n",	/* trailing */
	"PROXY TCP5 192.0.2.7 198.51.100.1 1 2\r\n",
	"PROXY tcp4 192.0.2.7 198.51.100.1 1 2\r\n",
	"PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",	/* family */
	"PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n",
	"PROXY TCP4 192.0.2.7 2001:db8::1 1 2\r\n",
	"PROXY TCP4 999.0.2.7 198.51.100.1 1 2\r\n",
	"PROXY TCP4 192.0.2.07 198.51.100.1 1 2\r\n",
	"PROXY TCP4 192.0.2 198.51.100.1 1 2\r\n",
	"PROXY TCP4 localhost 198.51.100.1 1 2\r\n",
	"PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n",
	"PROXY TCP4 192.0.2.7 198.51.100.1 1 65536\r\n",
	"PROXY TCP4 192.0.2.7 198.51.100.1 01 2\r\n",	/* leading 0 */
	"PROXY TCP4 192.0.2.7 198.51.100.1 -1 2\r\n",
	"PROXY TCP4 192.0.2.7 198.51.100.1 +1 2\r\n",
	"PROXY TCP4 192.0.2.7 198.51.100.1 1x 2\r\n",
	"PROXY TCP4 192.0.2.7 198.51.100.1 100000 2\r\n",
	"PROXY TCP4 192.0.2.7 198.51.100.1  2\r\n",	/* empty port */
	"PROXY \r\n",
	"PROXY\r\n",
	"PROXY UNKNOWN\n",
	"PROXY UNKNOWNX\r\n",
	"PROXY  UNKNOWN\r\n",
    };
    for (const char *s : bad) {
	EXPECT_EQ(Parse(s), ProxyStatus::Invalid) << s;
    }
}

TEST(ProxyV1, NotAHeaderAtAll)
{
    EXPECT_EQ(Parse("GET / HTTP/1.0\r\n\r\n"), ProxyStatus::Invalid);
    EXPECT_EQ(Parse("G"), ProxyStatus::Invalid);
    EXPECT_EQ(Parse("proxy TCP4"), ProxyStatus::Invalid);
    EXPECT_EQ(Parse("PROXZ"), ProxyStatus::Invalid);
    EXPECT_EQ(Parse("PROXYTCP4"), ProxyStatus::Invalid);
    EXPECT_EQ(Parse(std::string("\0PROXY", 6)), ProxyStatus::Invalid);
    EXPECT_EQ(Parse("PRO"), ProxyStatus::NeedMore);
}

TEST(ProxyV1, NulInTheLineIsRefused)
{
    EXPECT_EQ(Parse(std::string("PROXY TCP4 192.0.2.7\0 198.51.100.1 1 2\r\n",
	    40)), ProxyStatus::Invalid);
}

/*
 * Version 2.
 */

TEST(ProxyV2, Tcp4)
{
    ProxyHeader h;
    Bytes b = V2(0x21, 0x11, Tcp4Body("192.0.2.9", "10.0.0.1", 1234, 80));
    ASSERT_EQ(Parse(b, h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, 28u);
    EXPECT_TRUE(h.hasAddress);
    EXPECT_EQ(h.address, "192.0.2.9");
    EXPECT_EQ(h.port, 1234);
}

TEST(ProxyV2, Tcp6)
{
    ProxyHeader h;
    Bytes b = V2(0x21, 0x21, Tcp6Body("2001:db8::42", "::1", 65535, 443));
    ASSERT_EQ(Parse(b, h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, 52u);
    EXPECT_EQ(h.address, "2001:db8::42");
    EXPECT_EQ(h.port, 65535);
}

TEST(ProxyV2, BytesAfterTheHeaderAreNotPartOfIt)
{
    ProxyHeader h;
    Bytes b = V2(0x21, 0x11, Tcp4Body("192.0.2.9", "10.0.0.1", 1, 2));
    ASSERT_EQ(Parse(Concat(b, FromString("\r\n\r\nmore")), h),
	    ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, b.size());
    ASSERT_EQ(Parse(Concat(b, b), h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, b.size());
}

TEST(ProxyV2, TlvsAreInsideTheHeader)
{
    ProxyHeader h;
    Bytes tlvs = Concat(Tlv(0x01, "h2"), Tlv(0x02, "example.com"));
    tlvs = Concat(tlvs, Tlv(0x04, std::string(100, '\0')));
    Bytes b = V2(0x21, 0x11, Tcp4Body("198.51.100.3", "10.0.0.1", 4321,
	    443, tlvs));
    ASSERT_EQ(Parse(Concat(b, FromString("GET")), h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, b.size());
    EXPECT_EQ(h.address, "198.51.100.3");
    EXPECT_EQ(h.port, 4321);
}

TEST(ProxyV2, LocalKeepsThePeerWhateverTheAddressBlock)
{
    ProxyHeader h;
    h.hasAddress = true;
    h.address = "10.0.0.1";
    Bytes b = V2(0x20, 0x11, Tcp4Body("192.0.2.9", "10.0.0.1", 1, 2));
    ASSERT_EQ(Parse(b, h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, b.size());
    EXPECT_FALSE(h.hasAddress);
    EXPECT_EQ(h.address, "");
    /* The family byte of a LOCAL header is to be ignored. */
    ASSERT_EQ(Parse(V2(0x20, 0xFF, {}), h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, 16u);
}

TEST(ProxyV2, UnspecKeepsThePeer)
{
    ProxyHeader h;
    ASSERT_EQ(Parse(V2(0x21, 0x00, Bytes(7, 0xAA)), h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, 23u);
    EXPECT_FALSE(h.hasAddress);
}

TEST(ProxyV2, EveryPrefixNeedsMore)
{
    ExpectPrefixesNeedMore(V2(0x21, 0x11,
	    Tcp4Body("192.0.2.9", "10.0.0.1", 1234, 80, Tlv(0x01, "h2"))));
    ExpectPrefixesNeedMore(V2(0x21, 0x21,
	    Tcp6Body("2001:db8::42", "::1", 1, 2)));
    ExpectPrefixesNeedMore(V2(0x20, 0x00, {}));
}

TEST(ProxyV2, LengthLimit)
{
    ProxyHeader h;
    size_t most = kMaxProxyHeader - 16;
    Bytes b = V2(0x21, 0x11, Tcp4Body("192.0.2.9", "10.0.0.1", 1, 2,
	    Tlv(0xEE, std::string(most - 12 - 3, 'x'))));
    ASSERT_EQ(b.size(), kMaxProxyHeader);
    ASSERT_EQ(Parse(b, h), ProxyStatus::Done);
    EXPECT_EQ(h.headerLen, kMaxProxyHeader);

    /* One byte more is refused from the 16-byte preamble alone. */
    Bytes over = V2(0x21, 0x11, Bytes(most + 1, 0));
    EXPECT_EQ(ParseProxyHeader(over.data(), 16, h), ProxyStatus::Invalid);
    Bytes huge = kSig;
    Append(huge, Bytes{0x21, 0x11, 0xFF, 0xFF});
    EXPECT_EQ(Parse(huge, h), ProxyStatus::Invalid);
}

TEST(ProxyV2, Malformed)
{
    Bytes tcp4 = Tcp4Body("192.0.2.9", "10.0.0.1", 1, 2);
    struct {
	const char *what;
	Bytes bytes;
    } bad[] = {
	{"version 1", V2(0x11, 0x11, tcp4)},
	{"version 3", V2(0x31, 0x11, tcp4)},
	{"version 0", V2(0x01, 0x11, tcp4)},
	{"command 2", V2(0x22, 0x11, tcp4)},
	{"command 15", V2(0x2F, 0x11, tcp4)},
	{"UDP over IPv4", V2(0x21, 0x12, tcp4)},
	{"UDP over IPv6", V2(0x21, 0x22, Bytes(36, 0))},
	{"AF_UNIX stream", V2(0x21, 0x31, Bytes(216, 0))},
	{"AF_UNIX datagram", V2(0x21, 0x32, Bytes(216, 0))},
	{"unknown family", V2(0x21, 0x41, tcp4)},
	{"TCP4 too short", V2(0x21, 0x11, Bytes(11, 0))},
	{"TCP4 empty", V2(0x21, 0x11, {})},
	{"TCP6 too short", V2(0x21, 0x21, Bytes(35, 0))},
	{"TCP6 with a TCP4 block", V2(0x21, 0x21, tcp4)},
    };
    for (auto &c : bad) {
	ProxyHeader h;
	EXPECT_EQ(Parse(c.bytes, h), ProxyStatus::Invalid) << c.what;
    }
}

TEST(ProxyV2, BrokenSignature)
{
    Bytes b = V2(0x21, 0x11, Tcp4Body("192.0.2.9", "10.0.0.1", 1, 2));
    for (size_t i = 0; i < kSig.size(); i++) {
	Bytes c = b;
	c[i] ^= 0x20;
	ProxyHeader h;
	EXPECT_EQ(Parse(c, h), ProxyStatus::Invalid) << "byte " << i;
	/* Cut just after the broken byte: already refused. */
	EXPECT_EQ(ParseProxyHeader(c.data(), i + 1, h), ProxyStatus::Invalid)
		<< "prefix to byte " << i;
    }
}

TEST(ProxyParse, EmptyInputNeedsMore)
{
    ProxyHeader h;
    EXPECT_EQ(ParseProxyHeader(nullptr, 0, h), ProxyStatus::NeedMore);
}

/*
 * The fuzz target's seed corpus, and any crash it found (kept there), go
 * through the same checks here, so that a regression fails `make test`.
 * Run from the top of the source tree, as `make test-unit` does.
 */
TEST(ProxyCorpus, SeedsKeepTheInvariants)
{
    const char *dirName = "tests/fuzz/corpus";
    DIR *dir = opendir(dirName);
    if (!dir) {
	GTEST_SKIP() << dirName << " not found (run from the source tree)";
    }
    int files = 0;
    while (dirent *e = readdir(dir)) {
	if (e->d_name[0] == '.') {
	    continue;
	}
	std::string path = std::string(dirName) + "/" + e->d_name;
	std::ifstream in(path, std::ios::binary);
	Bytes bytes((std::istreambuf_iterator<char>(in)),
		std::istreambuf_iterator<char>());
	SCOPED_TRACE(path);
	CheckInvariants(bytes);
	files++;
    }
    closedir(dir);
    EXPECT_GT(files, 0);
}

/*
 * AddressFilter.
 */

TEST(AddressFilter, EmptyMatchesNothing)
{
    AddressFilter f;
    EXPECT_FALSE(f.Matches("127.0.0.1"));
    EXPECT_FALSE(f.Matches("::1"));
}

TEST(AddressFilter, SingleAddresses)
{
    AddressFilter f;
    ASSERT_TRUE(f.Add("127.0.0.1"));
    ASSERT_TRUE(f.Add("::1"));
    EXPECT_TRUE(f.Matches("127.0.0.1"));
    EXPECT_FALSE(f.Matches("127.0.0.2"));
    EXPECT_TRUE(f.Matches("::1"));
    EXPECT_TRUE(f.Matches("0:0:0:0:0:0:0:1"));
    EXPECT_FALSE(f.Matches("::2"));
}

TEST(AddressFilter, Ipv4Networks)
{
    AddressFilter f;
    ASSERT_TRUE(f.Add("127.0.0.0/8"));
    ASSERT_TRUE(f.Add("192.0.2.128/25"));
    EXPECT_TRUE(f.Matches("127.0.0.1"));
    EXPECT_TRUE(f.Matches("127.255.255.255"));
    EXPECT_FALSE(f.Matches("128.0.0.1"));
    EXPECT_FALSE(f.Matches("126.255.255.255"));
    EXPECT_TRUE(f.Matches("192.0.2.128"));
    EXPECT_TRUE(f.Matches("192.0.2.255"));
    EXPECT_FALSE(f.Matches("192.0.2.127"));
}

TEST(AddressFilter, PrefixNotOnAByteBoundary)
{
    AddressFilter low, high;
    ASSERT_TRUE(low.Add("127.0.0.0/9"));
    ASSERT_TRUE(high.Add("127.128.0.0/9"));
    EXPECT_TRUE(low.Matches("127.0.0.1"));
    EXPECT_TRUE(low.Matches("127.127.255.255"));
    EXPECT_FALSE(low.Matches("127.128.0.0"));
    EXPECT_FALSE(high.Matches("127.0.0.1"));
    EXPECT_TRUE(high.Matches("127.128.0.0"));
    EXPECT_TRUE(high.Matches("127.255.0.1"));
}

TEST(AddressFilter, HostBitsOfANetworkAreIgnored)
{
    AddressFilter f;
    ASSERT_TRUE(f.Add("10.1.2.3/8"));
    EXPECT_TRUE(f.Matches("10.200.0.1"));
    EXPECT_FALSE(f.Matches("11.1.2.3"));
}

TEST(AddressFilter, ZeroAndFullPrefixes)
{
    AddressFilter any4, one4, any6, one6;
    ASSERT_TRUE(any4.Add("0.0.0.0/0"));
    ASSERT_TRUE(one4.Add("192.0.2.1/32"));
    ASSERT_TRUE(any6.Add("::/0"));
    ASSERT_TRUE(one6.Add("2001:db8::1/128"));
    EXPECT_TRUE(any4.Matches("203.0.113.9"));
    EXPECT_FALSE(any4.Matches("::1"));		/* Families stay apart. */
    EXPECT_TRUE(one4.Matches("192.0.2.1"));
    EXPECT_FALSE(one4.Matches("192.0.2.0"));
    EXPECT_TRUE(any6.Matches("2001:db8::99"));
    EXPECT_FALSE(any6.Matches("127.0.0.1"));
    EXPECT_TRUE(one6.Matches("2001:db8::1"));
    EXPECT_FALSE(one6.Matches("2001:db8::2"));
}

TEST(AddressFilter, Ipv6Networks)
{
    AddressFilter f;
    ASSERT_TRUE(f.Add("2001:db8::/32"));
    ASSERT_TRUE(f.Add("fe80::/10"));
    EXPECT_TRUE(f.Matches("2001:db8:ffff::1"));
    EXPECT_FALSE(f.Matches("2001:db9::1"));
    EXPECT_TRUE(f.Matches("febf::1"));
    EXPECT_FALSE(f.Matches("fec0::1"));
}

TEST(AddressFilter, RefusesWhatIsNotAnAddressOrNetwork)
{
    const char *bad[] = {
	"", "localhost", "127.0.0.1/33", "::1/129", "127.0.0.1/-1",
	"127.0.0.1/", "/8", "127.0.0.1/08", "127.0.0.1/8/8", "127.0.0.1/x",
	"127.0.0", "127.0.0.1 ", " 127.0.0.1", "::1/", "1.2.3.4/1000000",
    };
    for (const char *s : bad) {
	AddressFilter f;
	EXPECT_FALSE(f.Add(s)) << '"' << s << '"';
	EXPECT_FALSE(f.Matches("127.0.0.1")) << '"' << s << '"';
    }
}

TEST(AddressFilter, MatchesOnlyNumericAddresses)
{
    AddressFilter f;
    ASSERT_TRUE(f.Add("0.0.0.0/0"));
    ASSERT_TRUE(f.Add("::/0"));
    EXPECT_FALSE(f.Matches(""));
    EXPECT_FALSE(f.Matches("localhost"));
    EXPECT_FALSE(f.Matches("/tmp/socket"));
    EXPECT_FALSE(f.Matches("127.0.0.1 80"));
}

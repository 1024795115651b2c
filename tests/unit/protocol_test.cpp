/*
 * protocol_test.cpp --
 *
 *	Unit tests for the worker <-> dispatcher messages
 *	(generic/ssProtocol.h): what Make puts on the wire, Parse reads back,
 *	and what Parse must refuse from a broken or hostile peer.
 */

#include "ssProtocol.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

using socketserver::kMagic;
using socketserver::kMaxMessage;
using socketserver::kMaxPeerText;
using socketserver::Message;
using socketserver::MsgHeader;
using socketserver::MsgType;

namespace {

/* The bytes a message puts on the wire. */
std::vector<char>
Wire(const Message &m)
{
    const char *p = static_cast<const char *>(m.Data());
    return std::vector<char>(p, p + m.Size());
}

bool
ParseBytes(const std::vector<char> &bytes, Message &out)
{
    return Message::Parse(bytes.data(), bytes.size(), out);
}

} // namespace

TEST(Protocol, MakeFillsTheHeader)
{
    Message m = Message::Make(MsgType::Register, 4242);
    EXPECT_EQ(m.header.magic, kMagic);
    EXPECT_EQ(m.header.type, MsgType::Register);
    EXPECT_EQ(m.header.pid, 4242u);
    EXPECT_EQ(m.textLen, 0u);
    EXPECT_EQ(m.Size(), sizeof(MsgHeader));
    EXPECT_EQ(m.Text(), "");
}

TEST(Protocol, PidDefaultsToZero)
{
    Message m = Message::Make(MsgType::Ready);
    EXPECT_EQ(m.header.pid, 0u);
}

TEST(Protocol, RoundTripEveryTypeWithoutText)
{
    for (MsgType type : {MsgType::Register, MsgType::Ready, MsgType::Ack,
	    MsgType::Conn, MsgType::Welcome, MsgType::Join}) {
	Message sent = Message::Make(type, 77);
	Message got;
	ASSERT_TRUE(ParseBytes(Wire(sent), got))
		<< "type " << static_cast<int>(type);
	EXPECT_EQ(got.header.magic, kMagic);
	EXPECT_EQ(got.header.type, type);
	EXPECT_EQ(got.header.pid, 77u);
	EXPECT_EQ(got.textLen, 0u);
    }
}

TEST(Protocol, ConnRoundTripCarriesThePeer)
{
    Message sent = Message::Make(MsgType::Conn);
    sent.SetText("127.0.0.1 54321");
    EXPECT_EQ(sent.Size(), sizeof(MsgHeader) + 15);
    Message got;
    ASSERT_TRUE(ParseBytes(Wire(sent), got));
    EXPECT_EQ(got.header.type, MsgType::Conn);
    EXPECT_EQ(got.Text(), "127.0.0.1 54321");
}

TEST(Protocol, ConnRoundTripIPv6Peer)
{
    Message sent = Message::Make(MsgType::Conn);
    std::string peer = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff 65535";
    sent.SetText(peer);
    Message got;
    ASSERT_TRUE(ParseBytes(Wire(sent), got));
    EXPECT_EQ(got.Text(), peer);
}

TEST(Protocol, ParseReplacesEarlierContents)
{
    Message got = Message::Make(MsgType::Conn);
    got.SetText("stale text from the last message");
    ASSERT_TRUE(ParseBytes(Wire(Message::Make(MsgType::Ack)), got));
    EXPECT_EQ(got.header.type, MsgType::Ack);
    EXPECT_EQ(got.Text(), "");
}

TEST(Protocol, SetTextTruncatesAtMaxPeerText)
{
    Message m = Message::Make(MsgType::Conn);
    std::string longText(kMaxPeerText + 50, 'x');
    longText[kMaxPeerText - 1] = 'L';	/* The last byte kept. */
    longText[kMaxPeerText] = 'D';	/* The first byte dropped. */
    m.SetText(longText);
    EXPECT_EQ(m.textLen, kMaxPeerText);
    EXPECT_EQ(m.Size(), kMaxMessage);
    EXPECT_EQ(m.Text(), longText.substr(0, kMaxPeerText));
    EXPECT_EQ(m.Text().back(), 'L');

    /* A maximal message is still a valid one. */
    Message got;
    ASSERT_TRUE(ParseBytes(Wire(m), got));
    EXPECT_EQ(got.Text(), longText.substr(0, kMaxPeerText));
}

TEST(Protocol, SetTextExactlyMaxIsKeptWhole)
{
    Message m = Message::Make(MsgType::Conn);
    std::string text(kMaxPeerText, 'y');
    m.SetText(text);
    EXPECT_EQ(m.Text(), text);
}

TEST(Protocol, SetTextShorterReplacesLonger)
{
    Message m = Message::Make(MsgType::Conn);
    m.SetText("10.0.0.100 12345");
    m.SetText("::1 80");
    EXPECT_EQ(m.Text(), "::1 80");
    EXPECT_EQ(m.Size(), sizeof(MsgHeader) + 6);
}

TEST(Protocol, ParseRejectsEmptyAndShort)
{
    std::vector<char> wire = Wire(Message::Make(MsgType::Ready));
    Message got;
    EXPECT_FALSE(Message::Parse(wire.data(), 0, got));
    EXPECT_FALSE(Message::Parse(wire.data(), 1, got));
    EXPECT_FALSE(Message::Parse(wire.data(), sizeof(MsgHeader) - 1, got));
    EXPECT_TRUE(Message::Parse(wire.data(), sizeof(MsgHeader), got));
}

TEST(Protocol, ParseRejectsLongerThanMaxMessage)
{
    Message m = Message::Make(MsgType::Conn);
    m.SetText(std::string(kMaxPeerText, 'z'));
    std::vector<char> wire = Wire(m);
    ASSERT_EQ(wire.size(), kMaxMessage);
    wire.push_back('!');		/* One byte too many. */
    Message got;
    EXPECT_FALSE(ParseBytes(wire, got));
    wire.resize(4096, 'q');
    EXPECT_FALSE(ParseBytes(wire, got));
}

TEST(Protocol, ParseRejectsWrongMagic)
{
    Message m = Message::Make(MsgType::Ready);
    std::vector<char> wire = Wire(m);
    wire[0] ^= 0x01;			/* Corrupt one bit of the magic. */
    Message got;
    EXPECT_FALSE(ParseBytes(wire, got));

    m.header.magic = 0;
    EXPECT_FALSE(ParseBytes(Wire(m), got));

    /* The magic byte-swapped: a peer of another byte order is refused. */
    uint32_t swapped = __builtin_bswap32(kMagic);
    m.header.magic = swapped;
    EXPECT_FALSE(ParseBytes(Wire(m), got));
}

TEST(Protocol, ParseRejectsUnknownType)
{
    Message got;
    for (int type : {0, 8, 9, 0x7f, 0xff}) {
	Message m = Message::Make(MsgType::Ready);
	m.header.type = static_cast<MsgType>(type);
	EXPECT_FALSE(ParseBytes(Wire(m), got)) << "type " << type;
    }
}

TEST(Protocol, CreditRoundTripCarriesRoomAndOpen)
{
    Message sent = Message::MakeCredit(3, 7);
    Message got;
    ASSERT_TRUE(ParseBytes(Wire(sent), got));
    EXPECT_EQ(got.header.type, MsgType::Credit);
    EXPECT_EQ(got.Credit().room, 3u);
    EXPECT_EQ(got.Credit().open, 7u);
}

TEST(Protocol, ParseRejectsACreditOfTheWrongSize)
{
    Message got;
    for (size_t len : {size_t(0), size_t(4), size_t(9)}) {
	Message m = Message::Make(MsgType::Credit);
	m.textLen = len;
	EXPECT_FALSE(ParseBytes(Wire(m), got)) << "length " << len;
    }
}

TEST(Protocol, ParseRejectsTrailingTextOnRegister)
{
    Message m = Message::Make(MsgType::Register, 123);
    m.SetText("x");
    Message got;
    EXPECT_FALSE(ParseBytes(Wire(m), got));
}

TEST(Protocol, JoinCarriesPidAndCredential)
{
    Message m = Message::Make(MsgType::Join, 321);
    m.SetText(std::string(64, 'f'));
    Message got;
    ASSERT_TRUE(ParseBytes(Wire(m), got));
    EXPECT_EQ(got.header.type, MsgType::Join);
    EXPECT_EQ(got.header.pid, 321u);
    EXPECT_EQ(got.Text(), std::string(64, 'f'));
}

TEST(Protocol, ParseRejectsTrailingTextOnReady)
{
    Message m = Message::Make(MsgType::Ready);
    m.SetText("127.0.0.1 80");
    Message got;
    EXPECT_FALSE(ParseBytes(Wire(m), got));
}

TEST(Protocol, ParseRejectsTrailingTextOnAck)
{
    Message m = Message::Make(MsgType::Ack);
    m.SetText(std::string(kMaxPeerText, 'a'));
    Message got;
    EXPECT_FALSE(ParseBytes(Wire(m), got));
}

TEST(Protocol, ParseAcceptsConnWithEmptyText)
{
    /* CONN may carry no peer text (e.g. a peer the kernel could not name). */
    Message got;
    ASSERT_TRUE(ParseBytes(Wire(Message::Make(MsgType::Conn)), got));
    EXPECT_EQ(got.header.type, MsgType::Conn);
    EXPECT_EQ(got.Text(), "");
}

TEST(Protocol, WireLayoutIsHeaderThenText)
{
    Message m = Message::Make(MsgType::Conn, 9);
    m.SetText("abc");
    std::vector<char> wire = Wire(m);
    ASSERT_EQ(wire.size(), sizeof(MsgHeader) + 3);
    uint32_t magic;
    std::memcpy(&magic, wire.data(), sizeof(magic));
    EXPECT_EQ(magic, kMagic);
    EXPECT_EQ(std::string(wire.data() + sizeof(MsgHeader), 3), "abc");
    EXPECT_LE(sizeof(MsgHeader) + kMaxPeerText, kMaxMessage);
}

TEST(Protocol, ParseFromUnalignedBuffer)
{
    /* recvmsg buffers are not promised to be aligned for MsgHeader. */
    Message m = Message::Make(MsgType::Conn, 1);
    m.SetText("192.0.2.1 443");
    std::vector<char> wire = Wire(m);
    std::vector<char> shifted(wire.size() + 1);
    std::memcpy(shifted.data() + 1, wire.data(), wire.size());
    Message got;
    ASSERT_TRUE(Message::Parse(shifted.data() + 1, wire.size(), got));
    EXPECT_EQ(got.Text(), "192.0.2.1 443");
    EXPECT_EQ(got.header.pid, 1u);
}

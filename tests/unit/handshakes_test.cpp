/*
 * handshakes_test.cpp --
 *
 *	Unit tests for the waits for a PROXY header and for a JOIN
 *	(generic/ssHandshakes.h), over real socket pairs and a real poll set
 *	but without a Server or Tcl: what reaches the sink, what the peer
 *	sees, the bound on waiting connections and the deadlines.
 */

#include "ssHandshakes.h"

#include "ssProtocol.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <unistd.h>
#include <vector>

using socketserver::Blocking;
using socketserver::ControlEndpoint;
using socketserver::Handshakes;
using socketserver::kMaxMessage;
using socketserver::kNoFd;
using socketserver::MakeSeqpacketPair;
using socketserver::MakeStreamPair;
using socketserver::Message;
using socketserver::MsgType;
using socketserver::PassedSocket;
using socketserver::PendingConn;
using socketserver::Poller;
using socketserver::ReceiveMessage;
using socketserver::SendMessage;
using socketserver::UniqueFd;
using socketserver::WaitReadable;

namespace {

using Failure = Handshakes::Failure;

/* Records what Handshakes gives back. */
struct Recorder final : Handshakes::Sink {
    std::vector<PendingConn> conns;
    std::vector<std::pair<UniqueFd, int>> joined;
    std::vector<Failure> failures;

    void HeaderRead(PendingConn conn) override {
	conns.push_back(std::move(conn));
    }
    void Joined(UniqueFd channel, int pid) override {
	joined.emplace_back(std::move(channel), pid);
    }
    void Failed(Failure why, const std::string &) override
    {
	failures.push_back(why);
    }
};

constexpr uint64_t kHeaderTag = uint64_t(1) << 56;
constexpr uint64_t kJoinTag = uint64_t(2) << 56;

class HandshakesTest : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_EQ(poller.Open(), 0); }

    Handshakes Make(size_t maxHeaderWaits = 256, size_t maxJoinWaits = 64) {
	Handshakes::Limits limits;
	limits.maxHeaderWaits = maxHeaderWaits;
	limits.maxJoinWaits = maxJoinWaits;
	return Handshakes(sink, poller, control, limits,
		Handshakes::Tags{kHeaderTag, kJoinTag});
    }

    /* A connection to wait on; its peer end is returned in peer. */
    PendingConn Connection(UniqueFd &peer) {
	PendingConn conn;
	EXPECT_EQ(MakeStreamPair(conn.fd, peer), 0);
	conn.peer = "127.0.0.1 4000";
	return conn;
    }

    /* Starts a header wait on a new connection. Returns its descriptor. */
    int AwaitHeader(Handshakes &h, UniqueFd &peer) {
	PendingConn conn = Connection(peer);
	int fd = conn.fd.Get();
	h.AwaitHeader(std::move(conn));
	return fd;
    }

    /* The tokens the poll set reports now (no wait). */
    std::vector<uint64_t> Ready() {
	std::vector<uint64_t> tokens;
	tokens.reserve(socketserver::kMaxEvents);
	EXPECT_EQ(poller.Wait(0, tokens), 0);
	return tokens;
    }

    Recorder sink;
    Poller poller;
    ControlEndpoint control;
};

void
Write(const UniqueFd &fd, const std::string &s)
{
    ASSERT_EQ(write(fd.Get(), s.data(), s.size()),
	    static_cast<ssize_t>(s.size()));
}

/* What is left to read on fd, without waiting. */
std::string
Rest(const UniqueFd &fd)
{
    char buf[256];
    long n = socketserver::ReadBytes(fd.Get(), buf, sizeof(buf));
    return n > 0 ? std::string(buf, n) : std::string();
}

/*
 * Whether fd's peer has closed: end of file, or a reset when it closed
 * with bytes it had not read.
 */
bool
PeerClosed(const UniqueFd &fd)
{
    char c;
    if (WaitReadable(fd.Get(), 1000) != 0) {
	return false;
    }
    ssize_t n = read(fd.Get(), &c, 1);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

} // namespace

TEST_F(HandshakesTest, WholeHeaderGivesTheClientAddressAndLeavesTheStream)
{
    Handshakes h = Make();
    UniqueFd peer;
    int fd = AwaitHeader(h, peer);
    EXPECT_EQ(h.HeaderWaits(), 1u);
    Write(peer, "PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\nGET");
    EXPECT_EQ(Ready(), std::vector<uint64_t>{kHeaderTag | fd});
    h.ReadHeader(fd);
    ASSERT_EQ(sink.conns.size(), 1u);
    EXPECT_EQ(sink.conns[0].peer, "192.0.2.7 5555");
    EXPECT_EQ(Rest(sink.conns[0].fd), "GET");
    EXPECT_EQ(h.HeaderWaits(), 0u);
    EXPECT_TRUE(sink.failures.empty());
    EXPECT_TRUE(Ready().empty());	/* No longer watched. */
}

TEST_F(HandshakesTest, HeaderInPiecesWaitsForTheRest)
{
    Handshakes h = Make();
    UniqueFd peer;
    int fd = AwaitHeader(h, peer);
    Write(peer, "PROXY TCP4 192.0.2.7 ");
    h.ReadHeader(fd);
    EXPECT_TRUE(sink.conns.empty());
    EXPECT_EQ(h.HeaderWaits(), 1u);
    Write(peer, "10.0.0.1 5555 80\r\nx");
    h.ReadHeader(fd);
    ASSERT_EQ(sink.conns.size(), 1u);
    EXPECT_EQ(sink.conns[0].peer, "192.0.2.7 5555");
    EXPECT_EQ(Rest(sink.conns[0].fd), "x");
}

TEST_F(HandshakesTest, MalformedHeaderClosesTheConnection)
{
    Handshakes h = Make();
    UniqueFd peer;
    int fd = AwaitHeader(h, peer);
    Write(peer, "GET / HTTP/1.0\r\n\r\n");
    h.ReadHeader(fd);
    EXPECT_TRUE(sink.conns.empty());
    EXPECT_EQ(sink.failures, std::vector<Failure>{Failure::BadHeader});
    EXPECT_EQ(h.HeaderWaits(), 0u);
    EXPECT_TRUE(PeerClosed(peer));
}

TEST_F(HandshakesTest, PastTheBoundTheOldestWaitIsClosed)
{
    Handshakes h = Make(2);
    UniqueFd peers[3];
    int fds[3];
    for (int i = 0; i < 3; i++) {
	fds[i] = AwaitHeader(h, peers[i]);
    }
    EXPECT_EQ(h.HeaderWaits(), 2u);
    EXPECT_EQ(sink.failures, std::vector<Failure>{Failure::DroppedHeader});
    EXPECT_TRUE(PeerClosed(peers[0]));
    /* The newest still gets its header read. */
    Write(peers[2], "PROXY TCP4 192.0.2.9 10.0.0.1 9 80\r\n");
    h.ReadHeader(fds[2]);
    ASSERT_EQ(sink.conns.size(), 1u);
    EXPECT_EQ(sink.conns[0].peer, "192.0.2.9 9");
}

TEST_F(HandshakesTest, LateWaitsAreClosedOldestFirst)
{
    Handshakes h = Make();
    EXPECT_EQ(h.NextDeadline(), Handshakes::Clock::time_point::max());
    UniqueFd peer1, peer2;
    auto before = Handshakes::Clock::now();
    h.AwaitHeader(Connection(peer1));
    h.AwaitHeader(Connection(peer2));
    auto first = h.NextDeadline();
    EXPECT_GE(first, before + std::chrono::milliseconds(5000));
    h.Expire(first);
    EXPECT_EQ(h.HeaderWaits(), 1u);
    EXPECT_TRUE(PeerClosed(peer1));
    h.Expire(first + std::chrono::hours(1));
    EXPECT_EQ(h.HeaderWaits(), 0u);
    EXPECT_EQ(sink.failures,
	    (std::vector<Failure>{Failure::LateHeader, Failure::LateHeader}));
    EXPECT_TRUE(PeerClosed(peer2));
}

TEST_F(HandshakesTest, JoinIsWelcomedAndTheChannelHandedOver)
{
    Handshakes h = Make();
    UniqueFd ours, theirs;
    ASSERT_EQ(MakeSeqpacketPair(ours, theirs), 0);
    int fd = ours.Get();
    h.AwaitJoin(std::move(ours));
    EXPECT_EQ(h.JoinWaits(), 1u);
    Message join = Message::Make(MsgType::Join, 4242);
    ASSERT_EQ(SendMessage(theirs.Get(), join.Data(), join.Size(), kNoFd), 0);
    EXPECT_EQ(Ready(), std::vector<uint64_t>{kJoinTag | fd});
    h.ReadJoin(fd);
    ASSERT_EQ(sink.joined.size(), 1u);
    EXPECT_EQ(sink.joined[0].first.Get(), fd);
    EXPECT_EQ(sink.joined[0].second, 4242);
    EXPECT_EQ(h.JoinWaits(), 0u);
    char buf[kMaxMessage];
    UniqueFd none;
    long n = ReceiveMessage(theirs.Get(), buf, sizeof(buf), none,
	    Blocking::No, PassedSocket::Refuse);
    Message welcome;
    ASSERT_GT(n, 0);
    ASSERT_TRUE(Message::Parse(buf, n, welcome));
    EXPECT_EQ(welcome.header.type, MsgType::Welcome);
}

TEST_F(HandshakesTest, GarbageInsteadOfJoinIsRejectedAHangUpIsNot)
{
    Handshakes h = Make();
    UniqueFd ours1, theirs1, ours2, theirs2;
    ASSERT_EQ(MakeSeqpacketPair(ours1, theirs1), 0);
    ASSERT_EQ(MakeSeqpacketPair(ours2, theirs2), 0);
    int fd1 = ours1.Get(), fd2 = ours2.Get();
    h.AwaitJoin(std::move(ours1));
    h.AwaitJoin(std::move(ours2));
    Message ready = Message::Make(MsgType::Ready);
    ASSERT_EQ(SendMessage(theirs1.Get(), ready.Data(), ready.Size(), kNoFd),
	    0);
    theirs2.Reset();
    h.ReadJoin(fd1);
    h.ReadJoin(fd2);
    EXPECT_TRUE(sink.joined.empty());
    EXPECT_EQ(sink.failures, std::vector<Failure>{Failure::BadJoin});
    EXPECT_EQ(h.JoinWaits(), 0u);
    EXPECT_TRUE(PeerClosed(theirs1));
}

TEST_F(HandshakesTest, RoomToJoinIsBounded)
{
    Handshakes h = Make(256, 1);
    EXPECT_TRUE(h.HasRoomToJoin());
    UniqueFd ours, theirs;
    ASSERT_EQ(MakeSeqpacketPair(ours, theirs), 0);
    h.AwaitJoin(std::move(ours));
    EXPECT_FALSE(h.HasRoomToJoin());
    h.Expire(h.NextDeadline());
    EXPECT_EQ(sink.failures, std::vector<Failure>{Failure::LateJoin});
    EXPECT_TRUE(h.HasRoomToJoin());
}

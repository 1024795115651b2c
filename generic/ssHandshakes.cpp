/*
 * ssHandshakes.cpp --
 *
 *	The waits for a PROXY header and for a JOIN (see ssHandshakes.h).
 */

#include "ssHandshakes.h"

#include "ssProtocol.h"
#include "ssProxy.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace socketserver {

/*
 * AwaitHeader --
 *	Watches conn until its header is whole (ReadHeader) or late
 *	(Expire), first closing the oldest wait if there is no room. A
 *	connection the poll set cannot take is closed at once.
 */

void
Handshakes::AwaitHeader(PendingConn conn)
{
    if (headers_.Size() >= limits_.maxHeaderWaits && !headers_.Empty()) {
	PendingConn oldest = TakeHeaderWait(headers_.Oldest().fd);
	sink_.Failed(Failure::DroppedHeader, oldest.peer);	/* Closed here. */
    }
    int fd = conn.fd.Get();
    if (poller_.Add(fd, tags_.header | static_cast<uint64_t>(fd)) != 0) {
	sink_.Failed(Failure::UnwatchedHeader, conn.peer);
	return;			/* conn closes here. */
    }
    headers_.Push({fd, Clock::now() + limits_.headerTimeout,
	    HeaderWait{std::move(conn), {}}});
}

/*
 * AwaitJoin --
 *	Watches a control connection until its JOIN arrives (ReadJoin) or
 *	its deadline passes (Expire). One the poll set cannot take is
 *	closed at once, as garbage.
 */

void
Handshakes::AwaitJoin(UniqueFd channel)
{
    int fd = channel.Get();
    if (poller_.Add(fd, tags_.join | static_cast<uint64_t>(fd)) != 0) {
	sink_.Failed(Failure::BadJoin, {});
	return;
    }
    joins_.Push({fd, Clock::now() + limits_.joinTimeout, std::move(channel)});
}

/*
 * ReadHeader --
 *	Reads what has arrived of a waiting connection's PROXY header, never
 *	a byte beyond it: it peeks, and takes bytes only when the parser says
 *	they are all header (an incomplete prefix, or exactly a whole header),
 *	so the handler's stream starts right after the header, and a slow
 *	proxy does not leave unread bytes that would wake poll() at once
 *	again. Once the header is whole, the original client's address
 *	replaces the proxy's and the connection goes to the sink. A malformed
 *	header, or the peer closing first, closes the connection.
 */

void
Handshakes::ReadHeader(int fd)
{
    auto *entry = headers_.Find(fd);
    if (!entry) {
	return;			/* Closed earlier in this round. */
    }
    HeaderWait &h = entry->item;
    uint8_t buf[kMaxProxyHeader];
    size_t have = h.got.size();
    std::memcpy(buf, h.got.data(), have);
    long n = PeekBytes(fd, buf + have, sizeof(buf) - have);
    if (n == -EAGAIN) {
	return;
    }
    ProxyHeader header;
    ProxyStatus status = n > 0 ? ParseProxyHeader(buf, have + n, header)
	    : ProxyStatus::Invalid;
    size_t take = status == ProxyStatus::Done ? header.headerLen - have
	    : static_cast<size_t>(n > 0 ? n : 0);
    if (status != ProxyStatus::Invalid
	    && ReadBytes(fd, buf + have, take) != static_cast<long>(take)) {
	status = ProxyStatus::Invalid;
    }
    if (status == ProxyStatus::NeedMore) {
	h.got.append(reinterpret_cast<char *>(buf + have), take);
	return;
    }
    PendingConn conn = TakeHeaderWait(fd);
    if (status == ProxyStatus::Invalid) {
	sink_.Failed(n > 0 ? Failure::BadHeader : Failure::EndedHeader,
		conn.peer);
	return;			/* conn closes here. */
    }
    if (header.hasAddress) {
	conn.peer = header.address + " " + std::to_string(header.port);
    }
    sink_.HeaderRead(std::move(conn));
}

/*
 * ReadJoin --
 *	A joining process's JOIN has arrived (or its connection ended). If
 *	its credential is allowed (on Windows, the secret; on Unix its uid
 *	was checked at accept), it is told WELCOME and the connection goes
 *	to the sink as the process's private channel; otherwise the
 *	connection closes and the peer sees end-of-file. A hang-up before
 *	JOIN is no failure: it is only closed.
 */

void
Handshakes::ReadJoin(int fd)
{
    if (!joins_.Find(fd)) {
	return;
    }
    char buf[kMaxMessage];
    UniqueFd passed;
    long n = ReceiveMessage(fd, buf, sizeof(buf), passed, Blocking::No,
	    PassedSocket::Refuse);
    if (n == -EAGAIN) {
	return;
    }
    UniqueFd channel = TakeJoinWait(fd);
    Message msg;
    if (n <= 0 || passed.Valid() || !Message::Parse(buf, n, msg)
	    || msg.header.type != MsgType::Join) {
	if (n != 0) {
	    sink_.Failed(Failure::BadJoin, {});	/* Garbage, not a hang-up. */
	}
	return;
    }
    if (!control_.AllowsCredential(msg.Text())) {
	sink_.Failed(Failure::RefusedJoin, {});
	return;
    }
    Message welcome = Message::Make(MsgType::Welcome);
    if (SendMessage(fd, welcome.Data(), welcome.Size(), kNoFd) == 0) {
	sink_.Joined(std::move(channel), static_cast<int>(msg.header.pid));
    }
}

/*
 * Expire --
 *	Closes the waits that are due, oldest first, and tells the sink.
 */

void
Handshakes::Expire(Clock::time_point now)
{
    while (!headers_.Empty() && headers_.Oldest().deadline <= now) {
	PendingConn late = TakeHeaderWait(headers_.Oldest().fd);
	sink_.Failed(Failure::LateHeader, late.peer);
    }
    while (!joins_.Empty() && joins_.Oldest().deadline <= now) {
	TakeJoinWait(joins_.Oldest().fd);
	sink_.Failed(Failure::LateJoin, {});
    }
}

Handshakes::Clock::time_point
Handshakes::NextDeadline() const
{
    Clock::time_point next = Clock::time_point::max();
    if (!headers_.Empty()) {
	next = std::min(next, headers_.Oldest().deadline);
    }
    if (!joins_.Empty()) {
	next = std::min(next, joins_.Oldest().deadline);
    }
    return next;
}

void
Handshakes::CloseCopies()
{
    headers_.ForEach([](auto &e) { e.item.conn.fd.Reset(); });
    joins_.ForEach([](auto &e) { e.item.Reset(); });
}

/*
 * TakeHeaderWait, TakeJoinWait --
 *	Stop watching a waiting connection and forget it. Return its
 *	descriptor (and what else it carried), which closes unless the
 *	caller keeps it.
 */

PendingConn
Handshakes::TakeHeaderWait(int fd)
{
    poller_.Remove(fd);
    return std::move(headers_.Take(fd).item.conn);
}

UniqueFd
Handshakes::TakeJoinWait(int fd)
{
    poller_.Remove(fd);
    return std::move(joins_.Take(fd).item);
}

} // namespace socketserver

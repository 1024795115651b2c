/*
 * ssProtocol.h --
 *
 *	The messages between a worker and the dispatcher, written once for
 *	both ends. Every message is one SEQPACKET datagram (on Windows, one
 *	frame on a loopback TCP connection): a fixed header, then text: the
 *	peer "address port" for CONN, the credential for JOIN. REGISTER and
 *	CONN carry one descriptor (see SendMessage).
 *
 *	registration socket   worker -> dispatcher   REGISTER + private fd
 *	control connection    worker -> dispatcher   JOIN, once, first
 *	control connection    dispatcher -> worker   WELCOME, once, or EOF
 *	private channel       worker -> dispatcher   READY, ACK, CREDIT
 *	private channel       dispatcher -> worker   CONN + connection fd
 *
 *	An accepted control connection becomes the worker's private channel
 *	once the dispatcher has welcomed it.
 *
 *	READY asks for one connection (a one-shot `client`). CREDIT is what a
 *	persistent worker (`client -concurrency N`) sends instead, whenever
 *	its room changes: "after every connection I have acknowledged, I can
 *	take `room` more, and I hold `open`". The dispatcher subtracts what it
 *	has sent since (sent, not yet acknowledged), so a CREDIT is absolute,
 *	never a delta, and a lower room (0: drain) needs no retraction.
 */

#ifndef SS_PROTOCOL_H
#define SS_PROTOCOL_H

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace socketserver {

enum class MsgType : uint8_t {
    Register = 1,
    Ready = 2,
    Ack = 3,
    Conn = 4,
    Welcome = 5,	/* Control socket: the server took this worker. */
    Join = 6,		/* Control socket: pid and credential. */
    Credit = 7,		/* Private channel: a CreditBody as the text. */
};

constexpr uint32_t kMagic = 0x53534432;	/* "SSD2" */
constexpr size_t kMaxPeerText = 128;

struct MsgHeader {
    uint32_t magic;
    MsgType type;
    uint8_t reserved[3];
    uint32_t pid;		/* REGISTER, JOIN: the worker's process. */
};

constexpr size_t kMaxMessage = sizeof(MsgHeader) + kMaxPeerText;

/* What a CREDIT carries, in the sender's byte order (same host). */
struct CreditBody {
    uint32_t room;		/* Connections it can take beyond those acked. */
    uint32_t open;		/* Channels handed to it and not yet closed. */
};

/*
 * A message as it travels: header plus optional text.
 */
struct Message {
    MsgHeader header{};
    char text[kMaxPeerText] = {};
    size_t textLen = 0;

    static Message Make(MsgType type, uint32_t pid = 0) {
	Message m;
	m.header.magic = kMagic;
	m.header.type = type;
	m.header.pid = pid;
	return m;
    }
    size_t Size() const { return sizeof(MsgHeader) + textLen; }
    void SetText(const std::string &s) {
	textLen = s.size() < kMaxPeerText ? s.size() : kMaxPeerText;
	std::memcpy(text, s.data(), textLen);
    }
    std::string Text() const { return std::string(text, textLen); }

    static Message MakeCredit(uint32_t room, uint32_t open) {
	Message m = Make(MsgType::Credit);
	CreditBody body{room, open};
	std::memcpy(m.text, &body, sizeof(body));
	m.textLen = sizeof(body);
	return m;
    }
    /* The body of a message Parse accepted as a CREDIT. */
    CreditBody Credit() const {
	CreditBody body{};
	std::memcpy(&body, text, sizeof(body));
	return body;
    }

    /*
     * Copies wire bytes into a message. Returns false if they are not a
     * well-formed message of ours (garbage from a hostile peer).
     */
    static bool Parse(const char *buf, size_t len, Message &out) {
	if (len < sizeof(MsgHeader) || len > kMaxMessage) {
	    return false;
	}
	std::memcpy(&out.header, buf, sizeof(MsgHeader));
	out.textLen = len - sizeof(MsgHeader);
	std::memcpy(out.text, buf + sizeof(MsgHeader), out.textLen);
	if (out.header.magic != kMagic) {
	    return false;
	}
	switch (out.header.type) {
	case MsgType::Register: case MsgType::Ready: case MsgType::Ack:
	case MsgType::Welcome:
	    return out.textLen == 0;
	case MsgType::Conn: case MsgType::Join:
	    return true;
	case MsgType::Credit:
	    return out.textLen == sizeof(CreditBody);
	}
	return false;
    }
    /* Wire bytes: the header and text are contiguous in this layout. */
    const void *Data() const { return &header; }
};

static_assert(offsetof(Message, text) == sizeof(MsgHeader),
	"header and text must be contiguous on the wire");

} // namespace socketserver

#endif /* SS_PROTOCOL_H */

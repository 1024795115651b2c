/*
 * ssWinPlatform.cpp --
 *
 *	The Windows side of ssPlatform.h, on Winsock 2: listening sockets
 *	(getaddrinfo, dual stack), loopback TCP pairs in place of AF_UNIX
 *	pairs with each message framed, the hand-off of a socket with
 *	WSADuplicateSocketW, WSAPoll, the control endpoint (loopback TCP and
 *	a secret in a file), and no-ops for what needs fork.
 *
 *	A descriptor here is a SOCKET held in an int (see ssPlatform.h).
 *	Every socket is made non-inheritable, as close-on-exec does on Unix:
 *	worker processes started with `open |` must not inherit the
 *	listeners. Every socket is non-blocking; waits are explicit.
 */

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <bcrypt.h>
#undef SendMessage		/* windows.h: SendMessageW, not ours. */

#include "ssListen.h"
#include "ssPlatform.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace socketserver {

namespace {

using Clock = std::chrono::steady_clock;

/*
 * Frames on a loopback TCP channel: a FrameHeader, the message, and the
 * WSAPROTOCOL_INFOW of a passed socket when the header says so.
 */
struct FrameHeader {
    uint32_t length;		/* Of the message that follows. */
    uint32_t hasSocket;		/* 1: a WSAPROTOCOL_INFOW follows it. */
};
constexpr size_t kMaxFrameMessage = 4096;
constexpr size_t kMaxFrame = sizeof(FrameHeader) + kMaxFrameMessage
	+ sizeof(WSAPROTOCOL_INFOW);

inline SOCKET
Sock(int fd)
{
    return static_cast<SOCKET>(static_cast<intptr_t>(fd));
}

inline int
Fd(SOCKET s)
{
    return s == INVALID_SOCKET ? -1 : static_cast<int>(s);
}

/* Maps a Winsock error to the errno value the generic code expects. */
int
ErrnoFrom(int wsa)
{
    switch (wsa) {
    case 0: return 0;
    case WSAEWOULDBLOCK: case WSAEINPROGRESS: return EAGAIN;
    case WSAEINTR: return EINTR;
    case WSAEADDRINUSE: return EADDRINUSE;
    case WSAEADDRNOTAVAIL: return EADDRNOTAVAIL;
    case WSAEAFNOSUPPORT: case WSAEPFNOSUPPORT: return EAFNOSUPPORT;
    case WSAECONNRESET: case WSAENETRESET: return ECONNRESET;
    case WSAECONNABORTED: return ECONNABORTED;
    case WSAECONNREFUSED: return ECONNREFUSED;
    case WSAENOTSOCK: return ENOTSOCK;
    case WSAEMFILE: return EMFILE;
    case WSAENOBUFS: return ENOBUFS;
    case WSAETIMEDOUT: return ETIMEDOUT;
    case WSAEACCES: return EACCES;
    case WSAEINVAL: return EINVAL;
    case WSAENOTCONN: return ENOTCONN;
    case WSAESHUTDOWN: return EPIPE;
    case WSAEMSGSIZE: return EMSGSIZE;
    case WSAENETDOWN: return ENETDOWN;
    case WSAENETUNREACH: return ENETUNREACH;
    case WSAEHOSTUNREACH: return EHOSTUNREACH;
    case WSAEPROTONOSUPPORT: return EPROTONOSUPPORT;
    case WSAEOPNOTSUPP: return EOPNOTSUPP;
    case WSANOTINITIALISED: return ENETDOWN;
    default: return EIO;
    }
}

int
LastError()
{
    return ErrnoFrom(WSAGetLastError());
}

/* Maps a Win32 (file) error to errno. */
int
ErrnoFromWin32(DWORD err)
{
    switch (err) {
    case ERROR_FILE_NOT_FOUND: case ERROR_PATH_NOT_FOUND: return ENOENT;
    case ERROR_ACCESS_DENIED: return EACCES;
    case ERROR_SHARING_VIOLATION: case ERROR_LOCK_VIOLATION:
	return EADDRINUSE;	/* A live server holds the control file. */
    case ERROR_FILENAME_EXCED_RANGE: return ENAMETOOLONG;
    case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: return ENOMEM;
    default: return EIO;
    }
}

/*
 * Winsock --
 *	Starts Winsock for this process once (Tcl starts it only for its own
 *	sockets, and perhaps later). Returns 0 or errno.
 */

int
Winsock()
{
    static std::once_flag once;
    static int result = 0;
    std::call_once(once, [] {
	WSADATA data;
	result = ErrnoFrom(WSAStartup(MAKEWORD(2, 2), &data));
    });
    return result;
}

/*
 * Prepare --
 *	Makes a new socket non-inheritable and non-blocking. Returns 0 or
 *	errno.
 */

int
Prepare(SOCKET s)
{
    u_long on = 1;
    SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0);
    return ioctlsocket(s, FIONBIO, &on) ? LastError() : 0;
}

int
NewSocket(int family, UniqueFd &out)
{
    int err = Winsock();
    if (err) {
	return err;
    }
    SOCKET s = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, nullptr, 0,
	    WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) {
	return LastError();
    }
    out.Reset(Fd(s));
    return Prepare(s);
}

void
NoDelay(int fd)
{
    BOOL on = TRUE;
    setsockopt(Sock(fd), IPPROTO_TCP, TCP_NODELAY,
	    reinterpret_cast<const char *>(&on), sizeof(on));
}

/*
 * WaitFor --
 *	Waits until fd is readable (or hung up) or writable, or timeoutMs
 *	passes (-1: forever). Returns 0, ETIMEDOUT or errno.
 */

int
WaitFor(int fd, bool writable, int timeoutMs)
{
    WSAPOLLFD p{};
    p.fd = Sock(fd);
    p.events = writable ? POLLWRNORM : POLLRDNORM;
    int n = WSAPoll(&p, 1, timeoutMs);
    if (n < 0) {
	return LastError();
    }
    return n == 0 ? ETIMEDOUT : 0;
}

int
MillisecondsLeft(Clock::time_point deadline)
{
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
	    deadline - Clock::now()).count();
    return ms < 0 ? 0 : static_cast<int>(ms);
}

sockaddr_in
LoopbackAddress(int port)
{
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<u_short>(port));
    return addr;
}

/*
 * LoopbackListener --
 *	A listening socket on 127.0.0.1 with a port the system picks.
 *	Returns 0 or errno; sets port.
 */

int
LoopbackListener(UniqueFd &out, int &port, int backlog)
{
    int err = NewSocket(AF_INET, out);
    if (err) {
	return err;
    }
    sockaddr_in addr = LoopbackAddress(0);
    int len = sizeof(addr);
    if (bind(Sock(out.Get()), reinterpret_cast<sockaddr *>(&addr),
	    sizeof(addr))
	    || listen(Sock(out.Get()), backlog)
	    || getsockname(Sock(out.Get()), reinterpret_cast<sockaddr *>(&addr),
		    &len)) {
	return LastError();
    }
    port = ntohs(addr.sin_port);
    return 0;
}

/*
 * ConnectLoopback --
 *	Connects a new socket to 127.0.0.1:port, waiting at most timeoutMs.
 *	Returns 0 or errno.
 */

int
ConnectLoopback(int port, UniqueFd &out, int timeoutMs)
{
    int err = NewSocket(AF_INET, out);
    if (err) {
	return err;
    }
    sockaddr_in addr = LoopbackAddress(port);
    if (connect(Sock(out.Get()), reinterpret_cast<sockaddr *>(&addr),
	    sizeof(addr)) == 0) {
	return 0;
    }
    err = LastError();
    if (err != EAGAIN) {
	return err;
    }
    err = WaitFor(out.Get(), true, timeoutMs);
    if (err) {
	return err;
    }
    int soError = 0, len = sizeof(soError);
    getsockopt(Sock(out.Get()), SOL_SOCKET, SO_ERROR,
	    reinterpret_cast<char *>(&soError), &len);
    return ErrnoFrom(soError);
}

/*
 * MakeLoopbackPair --
 *	Two connected loopback TCP sockets, the stand-in for socketpair().
 *	The accepted end is checked to be the one connected here: another
 *	local process could connect to the short-lived listener first.
 *	Returns 0 or errno.
 */

int
MakeLoopbackPair(UniqueFd &a, UniqueFd &b)
{
    UniqueFd listener, client;
    int port;
    int err = LoopbackListener(listener, port, 4);
    if (!err) {
	err = ConnectLoopback(port, client, 5000);
    }
    if (err) {
	return err;
    }
    sockaddr_in mine{}, theirs{};
    int len = sizeof(mine);
    getsockname(Sock(client.Get()), reinterpret_cast<sockaddr *>(&mine), &len);
    for (int tries = 0; tries < 8; tries++) {
	err = WaitFor(listener.Get(), false, 5000);
	if (err) {
	    return err;
	}
	len = sizeof(theirs);
	SOCKET s = accept(Sock(listener.Get()),
		reinterpret_cast<sockaddr *>(&theirs), &len);
	if (s == INVALID_SOCKET) {
	    continue;
	}
	UniqueFd accepted(Fd(s));
	Prepare(s);
	if (theirs.sin_port == mine.sin_port
		&& theirs.sin_addr.s_addr == mine.sin_addr.s_addr) {
	    NoDelay(accepted.Get());
	    NoDelay(client.Get());
	    a = std::move(client);
	    b = std::move(accepted);
	    return 0;
	}
    }
    return ECONNABORTED;
}

/*
 * SendFrame --
 *	Sends all of a frame. Nothing sent yet and no room: EAGAIN, so the
 *	caller never blocks; once part of it is out the rest must follow or
 *	the stream would lose its framing, so it waits for room. One mutex
 *	for the process keeps frames from threads sharing a socket (the
 *	registration socket) whole. Returns 0 or errno.
 */

int
SendFrame(int sock, const char *frame, size_t len)
{
    static std::mutex sending;
    std::lock_guard<std::mutex> lock(sending);
    size_t sent = 0;
    while (sent < len) {
	int n = send(Sock(sock), frame + sent, static_cast<int>(len - sent), 0);
	if (n >= 0) {
	    sent += n;
	    continue;
	}
	int err = LastError();
	if (err != EAGAIN) {
	    return err;
	}
	if (sent == 0) {
	    return EAGAIN;
	}
	err = WaitFor(sock, true, 5000);
	if (err) {
	    return err;
	}
    }
    return 0;
}

long
Receive(int fd, void *buf, size_t len, int flags)
{
    int n = recv(Sock(fd), static_cast<char *>(buf), static_cast<int>(len),
	    flags);
    return n < 0 ? -static_cast<long>(LastError()) : n;
}

/*
 * ReceiveFrame --
 *	Takes one whole frame, or nothing. Every sender writes a frame with
 *	one send, so on loopback its rest is at most moments behind its
 *	start: part of a frame is waited for (kPartialFrameWait at most, by
 *	peeking), and part of a frame that stays part of one is a broken or
 *	hostile peer. Watching it instead would spin: the socket stays
 *	readable. Returns the frame's length, 0 at end-of-file, or -errno
 *	(-EAGAIN: nothing has arrived; -EPROTO: not a frame of ours, and the
 *	stream cannot be trusted after it).
 */

constexpr std::chrono::milliseconds kPartialFrameWait{20};

long
ReceiveFrame(int sock, char *frame)
{
    auto deadline = Clock::now() + kPartialFrameWait;
    for (;;) {
	FrameHeader h;
	long n = Receive(sock, &h, sizeof(h), MSG_PEEK);
	if (n <= 0) {
	    return n;
	}
	if (n == static_cast<long>(sizeof(h))) {
	    if (h.length > kMaxFrameMessage || h.hasSocket > 1) {
		return -EPROTO;
	    }
	    size_t want = sizeof(h) + h.length
		    + (h.hasSocket ? sizeof(WSAPROTOCOL_INFOW) : 0);
	    n = Receive(sock, frame, want, MSG_PEEK);
	    if (n < 0) {
		return n;
	    }
	    if (static_cast<size_t>(n) == want) {
		return Receive(sock, frame, want, 0);
	    }
	}
	if (Clock::now() >= deadline) {
	    return -EPROTO;
	}
	Sleep(1);
    }
}

/*
 * SocketFromInfo --
 *	Rebuilds a socket passed as a WSAPROTOCOL_INFOW. Returns 0 or errno.
 */

int
SocketFromInfo(const char *bytes, UniqueFd &out)
{
    WSAPROTOCOL_INFOW info;
    std::memcpy(&info, bytes, sizeof(info));
    SOCKET s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO,
	    FROM_PROTOCOL_INFO, &info, 0,
	    WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) {
	return LastError();
    }
    out.Reset(Fd(s));
    SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0);
    return 0;
}

std::wstring
Wide(const std::string &utf8)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, utf8.c_str(), -1, nullptr, 0);
    std::wstring w(n > 0 ? n : 1, L'\0');
    if (n > 0) {
	MultiByteToWideChar(CP_UTF8, 0, utf8.c_str(), -1, &w[0], n);
    }
    w.resize(w.size() - 1);		/* The terminator. */
    return w;
}

/* A random secret, as 64 hex digits. Returns 0 or errno. */
int
MakeSecret(std::string &secret)
{
    unsigned char bytes[32];
    if (!BCRYPT_SUCCESS(BCryptGenRandom(nullptr, bytes, sizeof(bytes),
	    BCRYPT_USE_SYSTEM_PREFERRED_RNG))) {
	return EIO;
    }
    static const char hex[] = "0123456789abcdef";
    secret.clear();
    for (unsigned char b : bytes) {
	secret += hex[b >> 4];
	secret += hex[b & 15];
    }
    return 0;
}

/* The control file's one line: "socketserver-control PORT SECRET". */
constexpr const char *kControlTag = "socketserver-control";

} // namespace

void
UniqueFd::Reset(int fd) noexcept
{
    if (fd_ >= 0) {
	closesocket(Sock(fd_));
    }
    fd_ = fd;
}

int
StartNetwork()
{
    return Winsock();
}

/*
 * BindListener --
 *	Windows' SO_REUSEADDR would let another socket take the port over,
 *	so the port is claimed with SO_EXCLUSIVEADDRUSE instead; IPv6
 *	sockets are IPv6 only, as on Unix. -reuseport is refused before
 *	this.
 */

int
BindListener(const sockaddr *addr, size_t len, const ListenSpec &spec,
	Listener &listener)
{
    UniqueFd fd;
    int err = NewSocket(addr->sa_family, fd);
    if (err) {
	return err;
    }
    BOOL on = TRUE;
    setsockopt(Sock(fd.Get()), SOL_SOCKET, SO_EXCLUSIVEADDRUSE,
	    reinterpret_cast<const char *>(&on), sizeof(on));
    if (addr->sa_family == AF_INET6) {
	DWORD v6only = 1;
	setsockopt(Sock(fd.Get()), IPPROTO_IPV6, IPV6_V6ONLY,
		reinterpret_cast<const char *>(&v6only), sizeof(v6only));
    }
    if (bind(Sock(fd.Get()), addr, static_cast<int>(len))
	    || listen(Sock(fd.Get()),
		    spec.backlog > 0 ? spec.backlog : SOMAXCONN)) {
	return LastError();
    }
    sockaddr_storage bound;
    int boundLen = sizeof(bound);
    if (getsockname(Sock(fd.Get()), reinterpret_cast<sockaddr *>(&bound),
	    &boundLen)) {
	return LastError();
    }
    listener.address = FormatAddress(reinterpret_cast<sockaddr *>(&bound),
	    listener.port);
    listener.fd = std::move(fd);
    return 0;
}

int
OpenUnixListener(const std::string &, bool, int, int, UniqueFd &,
	SocketFile &)
{
    return EAFNOSUPPORT;		/* -unix is refused before this. */
}

void
RemoveSocketFile(const std::string &, const SocketFile &)
{
}

int
AdoptListener(int, Listener &, bool &)
{
    return EOPNOTSUPP;			/* -fd is refused before this. */
}

std::vector<int>
SystemdListenFds()
{
    return {};
}

/*
 * CreateControlFile --
 *	Creates the control file at path, held with sharing that lets
 *	readers in but no second writer, and deleted when its last handle
 *	closes (at Remove, or when the process dies). A file already there
 *	is replaced only if it is a control file that no live server holds
 *	(left by a crash the system did not clean up); a live one, or any
 *	other file, is EADDRINUSE and left alone, as on Unix. Returns 0 or
 *	errno; sets file.
 */

static int
CreateControlFile(const std::wstring &path, HANDLE &file)
{
    for (int tries = 0; tries < 3; tries++) {
	file = CreateFileW(path.c_str(), GENERIC_WRITE,
		FILE_SHARE_READ | FILE_SHARE_DELETE, nullptr, CREATE_NEW,
		FILE_ATTRIBUTE_NORMAL | FILE_FLAG_DELETE_ON_CLOSE, nullptr);
	if (file != INVALID_HANDLE_VALUE) {
	    return 0;
	}
	DWORD err = GetLastError();
	if (err != ERROR_FILE_EXISTS && err != ERROR_ALREADY_EXISTS) {
	    return ErrnoFromWin32(err);
	}
	HANDLE old = CreateFileW(path.c_str(), GENERIC_READ | GENERIC_WRITE,
		FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
		nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
	if (old == INVALID_HANDLE_VALUE) {
	    err = GetLastError();	/* Sharing violation: a live server. */
	    return err == ERROR_FILE_NOT_FOUND ? EAGAIN : EADDRINUSE;
	}
	char head[32] = "";
	DWORD got = 0;
	ReadFile(old, head, sizeof(head) - 1, &got, nullptr);
	CloseHandle(old);
	size_t tagLen = std::strlen(kControlTag);
	if (got < tagLen || std::memcmp(head, kControlTag, tagLen) != 0) {
	    return EADDRINUSE;		/* Not ours to replace. */
	}
	DeleteFileW(path.c_str());	/* A dead server's: try again. */
    }
    return EADDRINUSE;
}

/* The secret joiners must present, and the open control file. */
struct ControlEndpoint::State {
    std::string secret;
    HANDLE file = nullptr;
};

ControlEndpoint::ControlEndpoint() = default;

ControlEndpoint::~ControlEndpoint()
{
    CloseCopy();
}

/*
 * ControlEndpoint::Open --
 *	Listens on a loopback port, then writes the port and a fresh secret
 *	to the control file (see CreateControlFile).
 */

int
ControlEndpoint::Open(const std::string &path, int)
{
    int port;
    auto state = std::make_unique<State>();
    int err = LoopbackListener(listener_, port, SOMAXCONN);
    if (!err) {
	err = MakeSecret(state->secret);
    }
    HANDLE file = INVALID_HANDLE_VALUE;
    if (!err) {
	err = CreateControlFile(Wide(path), file);
    }
    if (err) {
	listener_.Reset();
	return err;
    }
    char line[160];
    int len = std::snprintf(line, sizeof(line), "%s %d %s\n", kControlTag,
	    port, state->secret.c_str());
    DWORD written = 0;
    if (!WriteFile(file, line, static_cast<DWORD>(len), &written, nullptr)
	    || written != static_cast<DWORD>(len)) {
	err = ErrnoFromWin32(GetLastError());
	CloseHandle(file);		/* Deletes it. */
	listener_.Reset();
	return err ? err : EIO;
    }
    FlushFileBuffers(file);
    state->file = file;
    state_ = std::move(state);
    path_ = path;
    return 0;
}

bool
ControlEndpoint::AllowsPeer(int, const std::vector<int> &) const
{
    return true;			/* Any local process can connect. */
}

bool
ControlEndpoint::AllowsCredential(const std::string &presented) const
{
    if (!state_ || state_->secret.empty()
	    || presented.size() != state_->secret.size()) {
	return false;
    }
    const std::string &secret = state_->secret;
    unsigned char diff = 0;		/* Constant time. */
    for (size_t i = 0; i < secret.size(); i++) {
	diff |= static_cast<unsigned char>(presented[i] ^ secret[i]);
    }
    return diff == 0;
}

void
ControlEndpoint::Remove()
{
    CloseCopy();			/* The file goes with its handle. */
}

void
ControlEndpoint::CloseCopy()
{
    listener_.Reset();
    if (state_ && state_->file) {
	CloseHandle(state_->file);
    }
    state_.reset();
    path_.clear();
}

/*
 * ConnectControl --
 *	Reads the control file (sharing it with the server's open handle)
 *	and connects to the port it names. Returns 0 or errno (ENOENT: no
 *	server made the file; ECONNREFUSED: nobody listens any more).
 */

int
ConnectControl(const std::string &path, UniqueFd &out,
	std::string &credential, int timeoutMs)
{
    HANDLE file = CreateFileW(Wide(path).c_str(), GENERIC_READ,
	    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
	    OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
    if (file == INVALID_HANDLE_VALUE) {
	return ErrnoFromWin32(GetLastError());
    }
    char line[160] = "";
    DWORD got = 0;
    BOOL ok = ReadFile(file, line, sizeof(line) - 1, &got, nullptr);
    CloseHandle(file);
    if (!ok) {
	return ErrnoFromWin32(GetLastError());
    }
    line[got] = '\0';
    char tag[32], secret[80];
    int port;
    if (std::sscanf(line, "%31s %d %79s", tag, &port, secret) != 3
	    || std::strcmp(tag, kControlTag) != 0 || port <= 0
	    || port > 0xFFFF) {
	return EINVAL;			/* Not a control file. */
    }
    credential = secret;
    int err = ConnectLoopback(port, out, timeoutMs);
    if (!err) {
	NoDelay(out.Get());
    }
    return err;
}

int
DuplicateFd(int fd, UniqueFd &out)
{
    WSAPROTOCOL_INFOW info;
    if (WSADuplicateSocketW(Sock(fd), GetCurrentProcessId(), &info)) {
	return LastError();
    }
    return SocketFromInfo(reinterpret_cast<const char *>(&info), out);
}

int
PeerUid(int, int &)
{
    return EOPNOTSUPP;
}

int
ProcessUid()
{
    return 0;
}

int
AcceptConnection(int listenFd, UniqueFd &conn, std::string &peer)
{
    sockaddr_storage addr;
    int len = sizeof(addr);
    SOCKET s = accept(Sock(listenFd), reinterpret_cast<sockaddr *>(&addr),
	    &len);
    if (s == INVALID_SOCKET) {
	return LastError();
    }
    conn.Reset(Fd(s));
    Prepare(s);
    int port;
    std::string host = FormatAddress(reinterpret_cast<sockaddr *>(&addr),
	    port);
    peer = host + " " + std::to_string(port);
    return 0;
}

int
MakeSeqpacketPair(UniqueFd &a, UniqueFd &b)
{
    return MakeLoopbackPair(a, b);
}

int
MakeStreamPair(UniqueFd &a, UniqueFd &b)
{
    return MakeLoopbackPair(a, b);
}

int
SendMessage(int sock, const void *data, size_t len, PassFd pass)
{
    int passFd = pass.fd;
    if (len > kMaxFrameMessage) {
	return EMSGSIZE;
    }
    char frame[kMaxFrame];
    FrameHeader h{static_cast<uint32_t>(len), passFd >= 0 ? 1u : 0u};
    std::memcpy(frame, &h, sizeof(h));
    std::memcpy(frame + sizeof(h), data, len);
    size_t total = sizeof(h) + len;
    if (passFd >= 0) {
	WSAPROTOCOL_INFOW info;
	if (WSADuplicateSocketW(Sock(passFd),
		static_cast<DWORD>(pass.receiverPid), &info)) {
	    return LastError();
	}
	std::memcpy(frame + total, &info, sizeof(info));
	total += sizeof(info);
    }
    return SendFrame(sock, frame, total);
}

int
SendMessageWaiting(int sock, const void *data, size_t len, PassFd pass,
	int timeoutMs)
{
    auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
	int err = SendMessage(sock, data, len, pass);
	if (err != EAGAIN) {
	    return err;
	}
	int left = MillisecondsLeft(deadline);
	if (left <= 0) {
	    return EAGAIN;
	}
	err = WaitFor(sock, true, left);
	if (err && err != ETIMEDOUT) {
	    return err;
	}
    }
}

long
ReceiveMessage(int sock, void *buf, size_t cap, UniqueFd &fdOut,
	Blocking blocking, PassedSocket passed)
{
    char frame[kMaxFrame];
    long n;
    while ((n = ReceiveFrame(sock, frame)) == -EAGAIN
	    && blocking == Blocking::Yes) {
	int err = WaitFor(sock, false, -1);
	if (err) {
	    return -err;
	}
    }
    if (n <= 0) {
	return n;
    }
    FrameHeader h;
    std::memcpy(&h, frame, sizeof(h));
    fdOut.Reset();
    if (h.hasSocket && passed == PassedSocket::Refuse) {
	return -EPROTO;		/* Never adopt a handle an untrusted peer names. */
    }
    if (h.hasSocket) {
	int err = SocketFromInfo(frame + sizeof(h) + h.length, fdOut);
	if (err) {
	    return err == EMFILE || err == ENOBUFS ? -EMFILE : -err;
	}
    }
    if (h.length > cap) {
	return -EMSGSIZE;
    }
    std::memcpy(buf, frame + sizeof(h), h.length);
    return static_cast<long>(h.length);
}

void
DiscardUnreadSockets(int channel)
{
    char buf[kMaxFrameMessage];
    UniqueFd unread;
    while (ReceiveMessage(channel, buf, sizeof(buf), unread, Blocking::No,
	    PassedSocket::Take) > 0) {
	unread.Reset();
    }
}

/*
 * SendAll, ReceiveAll: the SWIG layer's channel passing, which is
 * Unix-only (a socket can be passed on Windows only to a process named
 * in advance).
 */

int
SendAll(int, const void *, size_t, int, int)
{
    return EOPNOTSUPP;
}

int
ReceiveAll(int, void *, size_t, UniqueFd &, int)
{
    return EOPNOTSUPP;
}

long
PeekBytes(int fd, void *buf, size_t len)
{
    return Receive(fd, buf, len, MSG_PEEK);
}

long
ReadBytes(int fd, void *buf, size_t len)
{
    return Receive(fd, buf, len, 0);
}

int
WaitReadable(int fd, int timeoutMs)
{
    return WaitFor(fd, false, timeoutMs);
}

/*
 * Poller: WSAPoll over a set kept here. Wait scans from a point that
 * moves on each time, so that with more sockets ready than one Wait
 * reports, none waits behind the others for long.
 */

struct Poller::State {
    std::vector<WSAPOLLFD> fds;
    std::vector<uint64_t> tokens;
    size_t start = 0;
};

Poller::Poller() = default;
Poller::~Poller() = default;

int
Poller::Open()
{
    int err = Winsock();
    if (err) {
	return err;
    }
    state_ = std::make_unique<State>();
    state_->fds.reserve(kMaxEvents);
    return 0;
}

int
Poller::Add(int fd, uint64_t token)
{
    WSAPOLLFD p{};
    p.fd = Sock(fd);
    p.events = POLLRDNORM;
    state_->fds.push_back(p);
    state_->tokens.push_back(token);
    return 0;
}

void
Poller::Remove(int fd)
{
    for (size_t i = 0; i < state_->fds.size(); i++) {
	if (state_->fds[i].fd == Sock(fd)) {
	    state_->fds.erase(state_->fds.begin() + i);
	    state_->tokens.erase(state_->tokens.begin() + i);
	    return;
	}
    }
}

int
Poller::Wait(int timeoutMs, std::vector<uint64_t> &tokens)
{
    tokens.clear();
    std::vector<WSAPOLLFD> &fds = state_->fds;
    int n = WSAPoll(fds.data(), static_cast<ULONG>(fds.size()), timeoutMs);
    if (n < 0) {
	return LastError();
    }
    size_t count = fds.size();
    for (size_t k = 0; k < count && tokens.size() < kMaxEvents; k++) {
	size_t i = (state_->start + k) % count;
	if (fds[i].revents & (POLLRDNORM | POLLHUP | POLLERR | POLLNVAL)) {
	    tokens.push_back(state_->tokens[i]);
	}
	fds[i].revents = 0;
    }
    state_->start = count ? (state_->start + 1) % count : 0;
    return 0;
}

void
Poller::Close()
{
    state_.reset();
}

int
Wakeup::Open()
{
    return MakeLoopbackPair(write_, read_);
}

void
Wakeup::Signal()
{
    char c = 1;
    send(Sock(write_.Get()), &c, 1, 0);	/* Full: a wake-up is pending. */
}

void
Wakeup::Drain()
{
    char buf[64];
    while (recv(Sock(read_.Get()), buf, sizeof(buf), 0) > 0) {
    }
}

/*
 * SharedPage: nothing is forked on Windows, so the counters need only be
 * this process's memory.
 */

SharedPage::~SharedPage()
{
    if (addr_) {
	VirtualFree(addr_, 0, MEM_RELEASE);
    }
}

int
SharedPage::Map(size_t size)
{
    addr_ = VirtualAlloc(nullptr, size, MEM_COMMIT | MEM_RESERVE,
	    PAGE_READWRITE);
    size_ = size;
    return addr_ ? 0 : ENOMEM;
}

/* Windows delivers no signals to threads: nothing to block. */
struct SignalBlock::Saved {};

SignalBlock::SignalBlock() {}
SignalBlock::~SignalBlock() {}

bool
IsSocket(int fd)
{
    int type = 0, len = sizeof(type);
    return getsockopt(Sock(fd), SOL_SOCKET, SO_TYPE,
	    reinterpret_cast<char *>(&type), &len) == 0;
}

bool
IsInetSocket(int fd)
{
    sockaddr_storage addr;
    int len = sizeof(addr);
    return getsockname(Sock(fd), reinterpret_cast<sockaddr *>(&addr), &len)
	    == 0 && (addr.ss_family == AF_INET || addr.ss_family == AF_INET6);
}

bool
IsNonBlocking(int)
{
    return false;			/* Not asked: no channel passing. */
}

int
OpenModeOf(int, bool &readable, bool &writable)
{
    readable = writable = true;		/* Every descriptor is a socket. */
    return 0;
}

int
ProcessId()
{
    return static_cast<int>(GetCurrentProcessId());
}

int
ReplaceWithNullDevice(int)
{
    return 0;				/* No fork, nothing inherited. */
}

int
InstallForkHandlers(void (*)(), void (*)(), void (*)())
{
    return 0;
}

} // namespace socketserver

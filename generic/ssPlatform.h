/*
 * ssPlatform.h --
 *
 *	The one header between socketserver's platform-neutral code and the
 *	operating system. Everything here is implemented in unix/ and in win/
 *	(the shared socket code, which calls it, is in ssListen.h).
 *	Functions return 0 or an errno value; none throws, none touches a Tcl
 *	interp.
 *
 *	A descriptor is an int on both: on Windows it holds a SOCKET (every
 *	descriptor socketserver owns there is a socket), whose value Windows
 *	keeps within 32 bits so that 32- and 64-bit processes can share
 *	handles; INVALID_SOCKET becomes -1.
 */

#ifndef SS_PLATFORM_H
#define SS_PLATFORM_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct sockaddr;			/* The system's socket address. */

namespace socketserver {

/*
 * What only Unix has: fork, Unix-domain sockets, uids, SO_REUSEPORT and
 * inherited listening descriptors. Where it is false, the options that
 * need them are refused (see ssCmd.cpp).
 */
#ifdef _WIN32
constexpr bool kUnixFeatures = false;
#else
constexpr bool kUnixFeatures = true;
#endif

/*
 * UniqueFd: owns one descriptor and closes it exactly once. Move-only.
 */
class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd &&other) noexcept : fd_(other.Release()) {}
    UniqueFd &operator=(UniqueFd &&other) noexcept {
	if (this != &other) {
	    Reset(other.Release());
	}
	return *this;
    }
    UniqueFd(const UniqueFd &) = delete;
    UniqueFd &operator=(const UniqueFd &) = delete;
    ~UniqueFd() { Reset(); }

    int Get() const noexcept { return fd_; }
    bool Valid() const noexcept { return fd_ >= 0; }
    int Release() noexcept { int fd = fd_; fd_ = -1; return fd; }
    void Reset(int fd = -1) noexcept;	/* Closes the old one, if any. */

private:
    int fd_ = -1;
};

/*
 * Listening sockets.
 */
struct ListenSpec {
    std::string host;		/* Empty: every local address, v6 and v4. */
    std::vector<std::string> addresses;	/* host resolved, numeric. */
    int port = 0;		/* 0: let the system pick one. */
    int backlog = 0;		/* 0: the system's maximum. */
    bool reusePort = false;
};

/*
 * Which file a Unix-domain socket was bound to (device and inode), so
 * that only that file is ever removed; zero: none made here.
 */
struct SocketFile {
    uint64_t device = 0;
    uint64_t inode = 0;
};

struct Listener {
    UniqueFd fd;
    std::string address;	/* Numeric, as bound; a Unix socket's path. */
    int port = 0;
    bool isUnix = false;
    SocketFile file;		/* The socket file made for it, if any. */
};

/*
 * What OpenListeners (ssListen.h) asks of the platform: starting its network stack
 * (once; Winsock), and one non-blocking, close-on-exec listening socket
 * bound to addr, which holds the port already. Return 0 or errno.
 */
int StartNetwork();
int BindListener(const sockaddr *addr, size_t len, const ListenSpec &spec,
	Listener &out);

/*
 * A listening Unix-domain socket at path (SEQPACKET for the control
 * socket workers join through, STREAM for clients), with the file's mode
 * set to mode; file says which file it made. A stale socket file (nothing
 * accepts on it) is replaced; a live one is EADDRINUSE. Returns 0 or
 * errno. RemoveSocketFile removes the file at path only if it is still
 * file: not one another server has bound there since.
 */
int OpenUnixListener(const std::string &path, bool seqpacket, int mode,
	int backlog, UniqueFd &out, SocketFile &file);
void RemoveSocketFile(const std::string &path, const SocketFile &file);

/*
 * Takes over an already listening stream socket (systemd, einhorn): checks
 * it is one, makes it non-blocking and close-on-exec. Returns 0, or
 * ENOTSOCK / ESOCKTNOSUPPORT (not a stream socket) / EINVAL (not
 * listening) / EBADF.
 */
int AdoptListener(int fd, Listener &out, bool &isUnix);

/* The descriptors systemd passed this process (LISTEN_FDS, LISTEN_PID). */
std::vector<int> SystemdListenFds();

/*
 * ControlEndpoint: where worker processes started on their own join a
 * server, named by a path.
 *   Unix: a SEQPACKET socket at path with file mode mode; a joining peer
 *	is allowed when its uid (from the kernel) is in allowUids.
 *   Windows: a loopback TCP listener, and at path a file with its port
 *	and a random secret, held open (and deleted on close) while the
 *	server lives, so a second server finds it in use and no stale file
 *	outlives a crash; a joining peer is allowed when it presents the
 *	secret. Who may read the file is its directory's ACL.
 * AllowsPeer is asked when a peer connects, AllowsCredential when it says
 * JOIN; each is true where the platform decides at the other step.
 * Open returns 0 or errno (EADDRINUSE: a live server uses path). Remove
 * closes it and removes its file (the owner, at close); CloseCopy closes
 * only this process's descriptor (a forked child).
 */
class ControlEndpoint {
public:
    ControlEndpoint();
    ControlEndpoint(const ControlEndpoint &) = delete;
    ControlEndpoint &operator=(const ControlEndpoint &) = delete;
    ~ControlEndpoint();			/* CloseCopy. */

    int Open(const std::string &path, int mode);
    int Fd() const { return listener_.Get(); }
    bool Valid() const { return listener_.Valid(); }
    bool AllowsPeer(int peerFd, const std::vector<int> &allowUids) const;
    bool AllowsCredential(const std::string &presented) const;
    void Remove();
    void CloseCopy();

private:
    struct State;		/* The platform's own (Windows: the file). */
    UniqueFd listener_;
    std::string path_;
    std::unique_ptr<State> state_;
};

/*
 * Connects to the control endpoint at path, waiting at most timeoutMs,
 * and fills the credential to present in JOIN (empty on Unix). Returns 0
 * or errno.
 */
int ConnectControl(const std::string &path, UniqueFd &out,
	std::string &credential, int timeoutMs);

/* A close-on-exec duplicate of fd. Returns 0 or errno. */
int DuplicateFd(int fd, UniqueFd &out);

/* The uid of a Unix-domain peer (SO_PEERCRED). Returns 0 or errno. */
int PeerUid(int fd, int &uid);
int ProcessUid();

/*
 * Accepts one connection from a non-blocking listener. On success, conn is
 * a blocking, close-on-exec descriptor and peer is "address port" with an
 * IPv4 peer in plain dotted form. Returns 0 or errno (EAGAIN: none waiting).
 */
int AcceptConnection(int listenFd, UniqueFd &conn, std::string &peer);

/*
 * Connected AF_UNIX pairs, both ends close-on-exec. SEQPACKET keeps
 * message boundaries (the control channels); STREAM is a plain byte pipe.
 * Windows has neither: both are a loopback TCP pair, and SendMessage and
 * ReceiveMessage frame each message there.
 */
int MakeSeqpacketPair(UniqueFd &a, UniqueFd &b);
int MakeStreamPair(UniqueFd &a, UniqueFd &b);

/*
 * A descriptor to attach to a message: as SCM_RIGHTS on Unix; on Windows
 * as the WSAPROTOCOL_INFOW of a duplicate made for process receiverPid
 * (the process that will receive the message), which is why it is needed
 * there. kNoFd attaches none.
 */
struct PassFd {
    int fd = -1;
    int receiverPid = 0;
};
constexpr PassFd kNoFd{};

/*
 * Sends one message, with pass.fd attached (if any). Never blocks and
 * never raises SIGPIPE. Returns 0 or errno.
 */
int SendMessage(int sock, const void *data, size_t len, PassFd pass);

/*
 * SendMessage, but when the receiver's queue is full, waits (up to
 * timeoutMs in all) for room instead of failing with EAGAIN.
 */
int SendMessageWaiting(int sock, const void *data, size_t len, PassFd pass,
	int timeoutMs);

/* Whether ReceiveMessage waits for a message. */
enum class Blocking { No, Yes };

/*
 * Whether a channel may pass a socket. On Windows a passed socket is a
 * description that names a handle, which only a trusted sender (the
 * dispatcher, or this process) may give: with Refuse such a message is
 * -EPROTO. On Unix the kernel has installed it already and it lands in
 * fdOut either way, for the caller to refuse.
 */
enum class PassedSocket { Refuse, Take };

/*
 * Receives one message. A passed descriptor lands in fdOut, close-on-exec.
 * Returns the length (0: the peer has closed) or -errno: -EMFILE when a
 * descriptor was passed but this process had no room for it, -EMSGSIZE
 * for a message longer than cap, -EPROTO for a broken frame (Windows).
 */
long ReceiveMessage(int sock, void *buf, size_t cap, UniqueFd &fdOut,
	Blocking blocking, PassedSocket passed);

/*
 * Before a channel that sockets are passed over is closed: makes sure no
 * socket still queued in it, unread, outlives it. On Unix the kernel
 * closes those with the channel; on Windows each is a duplicate already
 * made for this process, which would hold its connection open after the
 * worker it is re-sent to has closed it, so each is taken and closed.
 */
void DiscardUnreadSockets(int channel);

/*
 * For the channel-passing commands, on a stream socket in either blocking
 * mode. SendAll sends every byte, with passFd attached to the first, but
 * starts only when sock has room now (else EAGAIN, nothing sent); it then
 * waits at most timeoutMs in all for room for the rest (else ETIMEDOUT,
 * part of the message sent). ReceiveAll fills buf completely, taking a
 * descriptor that arrives with the first bytes into fdOut; it waits at
 * most timeoutMs in all (-1: forever), then ETIMEDOUT. Both return 0 or
 * errno (ECONNRESET: the peer closed first).
 */
int SendAll(int sock, const void *data, size_t len, int passFd,
	int timeoutMs);
int ReceiveAll(int sock, void *buf, size_t len, UniqueFd &fdOut,
	int timeoutMs);

/*
 * Non-blocking reads from a connection: PeekBytes leaves the bytes queued,
 * ReadBytes takes them. Return the count (0: closed) or -errno.
 */
long PeekBytes(int fd, void *buf, size_t len);
long ReadBytes(int fd, void *buf, size_t len);

/*
 * A one-off wait until fd is readable (or hung up), or timeoutMs passes
 * (-1: forever). Returns 0 when it is, ETIMEDOUT, or errno.
 */
int WaitReadable(int fd, int timeoutMs);

/*
 * The dispatcher's sleep: a persistent set of descriptors, each with a
 * token, of which Wait returns those that are readable (or hung up), level
 * triggered. Adding or removing one costs O(1) and a wake-up costs what
 * is ready, not what is watched (epoll on Linux).
 */
constexpr int kMaxEvents = 64;		/* Reported by one Poller::Wait. */

class Poller {
public:
    Poller();
    ~Poller();
    Poller(const Poller &) = delete;
    Poller &operator=(const Poller &) = delete;
    int Open();
    int Add(int fd, uint64_t token);
    void Remove(int fd);
    int Wait(int timeoutMs, std::vector<uint64_t> &tokens);	/* 0/errno */
    void Close();
private:
    struct State;			/* The platform's own: epoll, WSAPoll. */
    std::unique_ptr<State> state_;
};

/*
 * A self-wakeup: Signal makes ReadFd readable until Drain.
 */
class Wakeup {
public:
    int Open();
    int ReadFd() const { return read_.Get(); }
    void Signal();
    void Drain();
    void Close() { read_.Reset(); write_.Reset(); }
private:
    UniqueFd read_, write_;
};

/*
 * An anonymous memory page shared with processes forked later.
 */
class SharedPage {
public:
    SharedPage() = default;
    SharedPage(const SharedPage &) = delete;
    SharedPage &operator=(const SharedPage &) = delete;
    ~SharedPage();
    int Map(size_t size);
    void *Address() const { return addr_; }
private:
    void *addr_ = nullptr;
    size_t size_ = 0;
};

/*
 * Blocks every signal in the calling thread while it lives, so that a
 * thread created meanwhile starts with them blocked: the dispatcher never
 * takes a signal meant for the Tcl threads (Tclx signal trap, SIGCHLD).
 */
class SignalBlock {
public:
    SignalBlock();
    ~SignalBlock();
    SignalBlock(const SignalBlock &) = delete;
    SignalBlock &operator=(const SignalBlock &) = delete;
private:
    struct Saved;			/* The platform's own: a signal mask. */
    std::unique_ptr<Saved> saved_;
};

/*
 * Descriptor facts and chores.
 */
bool IsSocket(int fd);
bool IsInetSocket(int fd);		/* An IPv4 or IPv6 socket. */
bool IsNonBlocking(int fd);		/* O_NONBLOCK is set (Unix). */
int OpenModeOf(int fd, bool &readable, bool &writable);
int ProcessId();
int ReplaceWithNullDevice(int fd);	/* Async-signal-safe. */
int InstallForkHandlers(void (*prepare)(), void (*parent)(),
	void (*child)());

} // namespace socketserver

#endif /* SS_PLATFORM_H */

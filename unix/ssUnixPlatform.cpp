/*
 * ssUnixPlatform.cpp --
 *
 *	The POSIX side of ssPlatform.h: listening sockets (getaddrinfo, dual
 *	stack), AF_UNIX pairs, SCM_RIGHTS, poll, the wake-up pipe, the shared
 *	counter page and the fork hooks.
 */

#include "ssPlatform.h"

#include "ssListen.h"

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace socketserver {

void
UniqueFd::Reset(int fd) noexcept
{
    if (fd_ >= 0) {
	close(fd_);
    }
    fd_ = fd;
}

int
StartNetwork()
{
    return 0;
}

/*
 * BindListener --
 *	SO_REUSEADDR (restarts while old connections linger), IPv6 sockets
 *	IPv6 only (the IPv4 ones are separate), SO_REUSEPORT on request.
 */

int
BindListener(const sockaddr *addr, size_t len, const ListenSpec &spec,
	Listener &listener)
{
    UniqueFd fd(socket(addr->sa_family,
	    SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.Valid()) {
	return errno;
    }
    int on = 1;
    setsockopt(fd.Get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (addr->sa_family == AF_INET6) {
	setsockopt(fd.Get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    if (spec.reusePort &&
	    setsockopt(fd.Get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on))) {
	return errno;
    }
    if (bind(fd.Get(), addr, static_cast<socklen_t>(len))
	    || listen(fd.Get(), spec.backlog > 0 ? spec.backlog : SOMAXCONN)) {
	return errno;
    }
    sockaddr_storage bound;
    socklen_t boundLen = sizeof(bound);
    if (getsockname(fd.Get(), reinterpret_cast<sockaddr *>(&bound),
	    &boundLen)) {
	return errno;
    }
    listener.address = FormatAddress(reinterpret_cast<sockaddr *>(&bound),
	    listener.port);
    listener.fd = std::move(fd);
    return 0;
}

int
AcceptConnection(int listenFd, UniqueFd &conn, std::string &peer)
{
    sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    int fd = accept4(listenFd, reinterpret_cast<sockaddr *>(&addr), &len,
	    SOCK_CLOEXEC);
    if (fd < 0) {
	return errno;
    }
    conn.Reset(fd);
    int port;
    std::string host = FormatAddress(reinterpret_cast<sockaddr *>(&addr),
	    port);
    peer = host + " " + std::to_string(port);
    return 0;
}

static int
FillUnixAddress(const std::string &path, sockaddr_un &addr)
{
    addr = sockaddr_un{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
	return ENAMETOOLONG;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return 0;
}

int
ConnectControl(const std::string &path, UniqueFd &out,
	std::string &credential, int timeoutMs)
{
    credential.clear();		/* The kernel vouches for our uid. */
    sockaddr_un addr;
    int err = FillUnixAddress(path, addr);
    if (err) {
	return err;
    }
    UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!fd.Valid()) {
	return errno;
    }

    /*
     * A blocking connect to a Unix-domain listener whose backlog is full
     * waits for room for as long as the send timeout says.
     */

    timeval tv{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
    setsockopt(fd.Get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int result;
    do {
	result = connect(fd.Get(), reinterpret_cast<sockaddr *>(&addr),
		sizeof(addr));
    } while (result < 0 && errno == EINTR);
    if (result < 0) {
	return errno == EAGAIN ? ETIMEDOUT : errno;
    }
    out = std::move(fd);
    return 0;
}

int
DuplicateFd(int fd, UniqueFd &out)
{
    out.Reset(fcntl(fd, F_DUPFD_CLOEXEC, 0));
    return out.Valid() ? 0 : errno;
}

/*
 * SocketFileIsLive --
 *	Whether a socket is bound to the socket file at path. The probe is a
 *	datagram socket: connecting it to a live stream or seqpacket
 *	listener fails with EPROTOTYPE and queues nothing there (a stream
 *	probe would hand the live server an empty connection), while a file
 *	nobody is bound to any more refuses it.
 */

static bool
SocketFileIsLive(const sockaddr_un &addr)
{
    UniqueFd probe(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!probe.Valid()) {
	return true;		/* Cannot tell: leave the file alone. */
    }
    return connect(probe.Get(), reinterpret_cast<const sockaddr *>(&addr),
	    sizeof(addr)) == 0 || errno != ECONNREFUSED;
}

int
OpenUnixListener(const std::string &path, bool seqpacket, int mode,
	int backlog, UniqueFd &out, SocketFile &file)
{
    sockaddr_un addr;
    int err = FillUnixAddress(path, addr);
    if (err) {
	return err;
    }
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
	if (!S_ISSOCK(st.st_mode) || SocketFileIsLive(addr)) {
	    return EADDRINUSE;
	}
	unlink(path.c_str());		/* Left by a server that died. */
    }
    UniqueFd fd(socket(AF_UNIX, (seqpacket ? SOCK_SEQPACKET : SOCK_STREAM)
	    | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.Valid()) {
	return errno;
    }
    if (bind(fd.Get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr))) {
	return errno;
    }
    if (chmod(path.c_str(), mode) || lstat(path.c_str(), &st)
	    || listen(fd.Get(), backlog > 0 ? backlog : SOMAXCONN)) {
	err = errno;
	unlink(path.c_str());
	return err;
    }
    file.device = st.st_dev;
    file.inode = st.st_ino;
    out = std::move(fd);
    return 0;
}

/* Which socket file Open made, so that Remove removes only that one. */
struct ControlEndpoint::State {
    SocketFile file;
};

ControlEndpoint::ControlEndpoint() : state_(std::make_unique<State>()) {}

ControlEndpoint::~ControlEndpoint()
{
    CloseCopy();
}

int
ControlEndpoint::Open(const std::string &path, int mode)
{
    int err = OpenUnixListener(path, true, mode, 0, listener_, state_->file);
    if (!err) {
	path_ = path;
    }
    return err;
}

bool
ControlEndpoint::AllowsPeer(int peerFd, const std::vector<int> &allowUids)
	const
{
    int uid = -1;
    if (PeerUid(peerFd, uid) != 0) {
	return false;
    }
    for (int ok : allowUids) {
	if (ok == uid) {
	    return true;
	}
    }
    return false;
}

bool
ControlEndpoint::AllowsCredential(const std::string &) const
{
    return true;			/* AllowsPeer has decided. */
}

void
ControlEndpoint::Remove()
{
    if (listener_.Valid()) {
	listener_.Reset();
	RemoveSocketFile(path_, state_->file);
    }
    path_.clear();
    state_->file = SocketFile();
}

void
ControlEndpoint::CloseCopy()
{
    listener_.Reset();
    path_.clear();
}

void
RemoveSocketFile(const std::string &path, const SocketFile &file)
{
    struct stat st;
    if (!path.empty() && file.inode != 0 && lstat(path.c_str(), &st) == 0
	    && S_ISSOCK(st.st_mode) && st.st_dev == file.device
	    && st.st_ino == file.inode) {
	unlink(path.c_str());
    }
}

int
AdoptListener(int fd, Listener &out, bool &isUnix)
{
    int type = 0, listening = 0;
    socklen_t len = sizeof(int);
    if (fcntl(fd, F_GETFD) < 0) {
	return EBADF;
    }
    if (!IsSocket(fd)) {
	return ENOTSOCK;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len)) {
	return errno;
    }
    if (type != SOCK_STREAM) {
	return ESOCKTNOSUPPORT;
    }
    len = sizeof(int);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len)) {
	return errno;
    }
    if (!listening) {
	return EINVAL;
    }
    sockaddr_storage addr{};
    len = sizeof(addr);
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len)) {
	return errno;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0
	    || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
	return errno;
    }
    isUnix = addr.ss_family == AF_UNIX;
    if (isUnix) {
	const char *path = reinterpret_cast<sockaddr_un *>(&addr)->sun_path;
	size_t max = len > offsetof(sockaddr_un, sun_path)
		? len - offsetof(sockaddr_un, sun_path) : 0;
	out.address.assign(path, strnlen(path, max));
	out.port = 0;
    } else {
	out.address = FormatAddress(reinterpret_cast<sockaddr *>(&addr),
		out.port);
    }
    out.isUnix = isUnix;
    out.fd.Reset(fd);
    return 0;
}

std::vector<int>
SystemdListenFds()
{
    std::vector<int> fds;
    const char *pid = getenv("LISTEN_PID");
    const char *count = getenv("LISTEN_FDS");
    if (!pid || !count || atol(pid) != static_cast<long>(getpid())) {
	return fds;
    }
    long n = atol(count);
    for (long i = 0; i < n && i < 1024; i++) {
	fds.push_back(3 + static_cast<int>(i));	/* SD_LISTEN_FDS_START */
    }
    return fds;
}

int
PeerUid(int fd, int &uid)
{
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
	return errno;
    }
    uid = static_cast<int>(cred.uid);
    return 0;
}

int
ProcessUid()
{
    return static_cast<int>(getuid());
}

static int
MakePair(int type, UniqueFd &a, UniqueFd &b)
{
    int sv[2];
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv)) {
	return errno;
    }
    a.Reset(sv[0]);
    b.Reset(sv[1]);
    return 0;
}

int
MakeSeqpacketPair(UniqueFd &a, UniqueFd &b)
{
    return MakePair(SOCK_SEQPACKET, a, b);
}

int
MakeStreamPair(UniqueFd &a, UniqueFd &b)
{
    return MakePair(SOCK_STREAM, a, b);
}

/*
 * PollOne --
 *	Waits until fd has events (or hangs up), or timeoutMs passes (-1:
 *	forever). Returns 0 when it does, ETIMEDOUT, or errno (EINTR
 *	included: the caller decides whether to wait again).
 */

static int
PollOne(int fd, short events, int timeoutMs)
{
    pollfd pfd{fd, events, 0};
    int n = poll(&pfd, 1, timeoutMs);
    return n < 0 ? errno : (n == 0 ? ETIMEDOUT : 0);
}

/*
 * SendWithFd --
 *	One sendmsg() of len bytes, with passFd (or -1 for none) attached as
 *	SCM_RIGHTS, never raising SIGPIPE. Returns the bytes sent or -errno.
 */

static long
SendWithFd(int sock, const void *data, size_t len, int passFd, int flags)
{
    iovec iov{const_cast<void *>(data), len};
    msghdr msg{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (passFd >= 0) {
	msg.msg_control = control;
	msg.msg_controllen = sizeof(control);
	cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	std::memcpy(CMSG_DATA(cmsg), &passFd, sizeof(int));
    }
    ssize_t n;
    do {
	n = sendmsg(sock, &msg, MSG_NOSIGNAL | flags);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

int
SendMessage(int sock, const void *data, size_t len, PassFd pass)
{
    long n = SendWithFd(sock, data, len, pass.fd, MSG_DONTWAIT);
    return n < 0 ? static_cast<int>(-n) : 0;
}

int
SendMessageWaiting(int sock, const void *data, size_t len, PassFd pass,
	int timeoutMs)
{
    auto deadline = std::chrono::steady_clock::now()
	    + std::chrono::milliseconds(timeoutMs);
    for (;;) {
	int err = SendMessage(sock, data, len, pass);
	if (err != EAGAIN) {
	    return err;
	}
	auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
		deadline - std::chrono::steady_clock::now()).count();
	if (left <= 0) {
	    return EAGAIN;
	}
	err = PollOne(sock, POLLOUT, static_cast<int>(left));
	if (err && err != EINTR && err != ETIMEDOUT) {
	    return err;
	}
    }
}

long
ReceiveMessage(int sock, void *buf, size_t cap, UniqueFd &fdOut,
	Blocking blocking, PassedSocket)
{
    iovec iov{buf, cap};
    msghdr msg{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n;
    do {
	n = recvmsg(sock, &msg,
		MSG_CMSG_CLOEXEC | (blocking == Blocking::Yes ? 0 : MSG_DONTWAIT));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
	return -errno;
    }

    /*
     * Keep the first descriptor passed; close any others a hostile peer
     * may have added, so that none leaks.
     */

    fdOut.Reset();
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
	if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
	    continue;
	}
	size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	for (size_t i = 0; i < count; i++) {
	    int fd;
	    std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	    if (!fdOut.Valid()) {
		fdOut.Reset(fd);
	    } else {
		close(fd);
	    }
	}
    }
    if (msg.msg_flags & MSG_CTRUNC) {
	return -EMFILE;		/* The descriptor could not be installed. */
    }
    if (msg.msg_flags & MSG_TRUNC) {
	return -EMSGSIZE;
    }
    return n;
}

void
DiscardUnreadSockets(int)
{
    /* The kernel closes descriptors still queued with the socket. */
}

static long
ReceiveBytes(int fd, void *buf, size_t len, int flags)
{
    ssize_t n;
    do {
	n = recv(fd, buf, len, flags | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

long
PeekBytes(int fd, void *buf, size_t len)
{
    return ReceiveBytes(fd, buf, len, MSG_PEEK);
}

long
ReadBytes(int fd, void *buf, size_t len)
{
    return ReceiveBytes(fd, buf, len, 0);
}


/*
 * MsLeft --
 *	The milliseconds from now until deadline, rounded up (a wait never
 *	ends early), at least 0.
 */

static int
MsLeft(std::chrono::steady_clock::time_point deadline)
{
    auto left = std::chrono::ceil<std::chrono::milliseconds>(
	    deadline - std::chrono::steady_clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

int
SendAll(int sock, const void *data, size_t len, int passFd, int timeoutMs)
{
    if (PollOne(sock, POLLOUT, 0) == ETIMEDOUT) {
	return EAGAIN;
    }
    auto deadline = std::chrono::steady_clock::now()
	    + std::chrono::milliseconds(timeoutMs);
    const char *p = static_cast<const char *>(data);
    size_t sent = 0;
    while (sent < len) {
	long n = SendWithFd(sock, p + sent, len - sent,
		sent == 0 ? passFd : -1, MSG_DONTWAIT);
	if (n >= 0) {
	    sent += n;
	    continue;
	}
	if (n != -EAGAIN && n != -EWOULDBLOCK) {
	    return static_cast<int>(-n);
	}
	int left = MsLeft(deadline);
	if (left == 0) {
	    return sent == 0 ? EAGAIN : ETIMEDOUT;
	}
	int err = PollOne(sock, POLLOUT, left);
	if (err && err != EINTR && err != ETIMEDOUT) {
	    return err;
	}
    }
    return 0;
}

int
ReceiveAll(int sock, void *buf, size_t len, UniqueFd &fdOut, int timeoutMs)
{
    auto deadline = std::chrono::steady_clock::now()
	    + std::chrono::milliseconds(timeoutMs);
    char *p = static_cast<char *>(buf);
    size_t got = 0;
    while (got < len) {
	UniqueFd fd;
	long n = ReceiveMessage(sock, p + got, len - got, fd, Blocking::No,
		PassedSocket::Take);
	if (fd.Valid() && !fdOut.Valid()) {
	    fdOut = std::move(fd);
	}
	if (n == 0) {
	    return ECONNRESET;
	}
	if (n > 0) {
	    got += n;
	    continue;
	}
	if (n != -EAGAIN && n != -EWOULDBLOCK) {
	    return static_cast<int>(-n);
	}
	int wait = timeoutMs < 0 ? -1 : MsLeft(deadline);
	if (wait == 0) {
	    return ETIMEDOUT;
	}
	int err = PollOne(sock, POLLIN, wait);
	if (err && err != EINTR && err != ETIMEDOUT) {
	    return err;
	}
    }
    return 0;
}

int
WaitReadable(int fd, int timeoutMs)
{
    return PollOne(fd, POLLIN, timeoutMs);
}

struct Poller::State {
    UniqueFd epoll;
};

Poller::Poller() = default;
Poller::~Poller() = default;

/*
 * Close --
 *	Closes the epoll descriptor but keeps its (small) State: a forked
 *	child closes its copy here, and freeing memory there could meet an
 *	allocator lock another thread held at fork.
 */

void
Poller::Close()
{
    if (state_) {
	state_->epoll.Reset();
    }
}

int
Poller::Open()
{
    state_ = std::make_unique<State>();
    state_->epoll.Reset(epoll_create1(EPOLL_CLOEXEC));
    return state_->epoll.Valid() ? 0 : errno;
}

int
Poller::Add(int fd, uint64_t token)
{
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    return epoll_ctl(state_->epoll.Get(), EPOLL_CTL_ADD, fd, &ev) ? errno : 0;
}

void
Poller::Remove(int fd)
{
    epoll_event ev{};		/* Kernels before 2.6.9 want one. */
    epoll_ctl(state_->epoll.Get(), EPOLL_CTL_DEL, fd, &ev);
}

int
Poller::Wait(int timeoutMs, std::vector<uint64_t> &tokens)
{
    epoll_event events[kMaxEvents];
    tokens.clear();
    int n = epoll_wait(state_->epoll.Get(), events, kMaxEvents, timeoutMs);
    if (n < 0) {
	return errno;
    }
    for (int i = 0; i < n; i++) {
	tokens.push_back(events[i].data.u64);
    }
    return 0;
}

int
Wakeup::Open()
{
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK)) {
	return errno;
    }
    read_.Reset(p[0]);
    write_.Reset(p[1]);
    return 0;
}

void
Wakeup::Signal()
{
    char c = 1;
    ssize_t n = write(write_.Get(), &c, 1);
    (void) n;		/* A full pipe is already a pending wake-up. */
}

void
Wakeup::Drain()
{
    char buf[64];
    while (read(read_.Get(), buf, sizeof(buf)) > 0) {
    }
}

SharedPage::~SharedPage()
{
    if (addr_) {
	munmap(addr_, size_);
    }
}

int
SharedPage::Map(size_t size)
{
    void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
	return errno;
    }
    addr_ = p;
    size_ = size;
    return 0;
}

struct SignalBlock::Saved {
    sigset_t mask;
};

SignalBlock::SignalBlock() : saved_(std::make_unique<Saved>())
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved_->mask);
}

SignalBlock::~SignalBlock()
{
    pthread_sigmask(SIG_SETMASK, &saved_->mask, nullptr);
}

bool
IsSocket(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

bool
IsNonBlocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && (flags & O_NONBLOCK);
}

bool
IsInetSocket(int fd)
{
    sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    return getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0
	    && (addr.ss_family == AF_INET || addr.ss_family == AF_INET6);
}

int
OpenModeOf(int fd, bool &readable, bool &writable)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) {
	return errno;
    }
    int mode = flags & O_ACCMODE;
    readable = (mode == O_RDONLY || mode == O_RDWR);
    writable = (mode == O_WRONLY || mode == O_RDWR);
    return 0;
}

/*
 * ProcessId --
 *	This process's id, asked on every connection a worker takes (is this
 *	link inherited across fork?), so cached: read once, and again in
 *	every child by a fork handler installed with the cache.
 */

static std::atomic<int> cachedPid{0};

static void
RefreshProcessId()
{
    cachedPid.store(static_cast<int>(getpid()), std::memory_order_relaxed);
}

int
ProcessId()
{
    static std::once_flag installed;
    std::call_once(installed, [] {
	RefreshProcessId();
	pthread_atfork(nullptr, nullptr, RefreshProcessId);
    });
    return cachedPid.load(std::memory_order_relaxed);
}

int
ReplaceWithNullDevice(int fd)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) {
	return errno;
    }
    int result = dup3(null, fd, O_CLOEXEC) < 0 ? errno : 0;
    close(null);
    return result;
}

int
InstallForkHandlers(void (*prepare)(), void (*parent)(), void (*child)())
{
    return pthread_atfork(prepare, parent, child);
}

} // namespace socketserver

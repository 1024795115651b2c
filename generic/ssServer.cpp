/*
 * ssServer.cpp --
 *
 *	The dispatcher: a thread per server that accepts a connection only
 *	while some worker is ready, sends it to the worker that has waited
 *	longest, keeps its own copy until the worker acknowledges receipt,
 *	and re-sends it to another worker if the first one dies before that.
 *	Workers arrive over the registration socket (forked children and
 *	threads) or the control socket (processes started on their own).
 */

#include "ssServer.h"

#include "ssProtocol.h"

#include <algorithm>
#include <cerrno>
#include <new>

namespace socketserver {

using Clock = std::chrono::steady_clock;

/* How long accepting pauses after the process runs out of descriptors. */
constexpr std::chrono::milliseconds kAcceptBackoff{100};

/*
 * How long a process that connected to the control socket has to JOIN,
 * and how many may be waiting to at once (the rest wait in the control
 * socket's listen backlog until one of them is done).
 */
constexpr std::chrono::milliseconds kJoinTimeout{5000};
constexpr size_t kMaxJoinWaits = 64;

/*
 * How many connections may wait for their PROXY header at once: past
 * it, the oldest is closed to make room (see Handshakes::AwaitHeader).
 */
constexpr size_t kMaxHeaderWaits = 256;

/*
 * OpenSockets --
 *	Creates every descriptor the server needs, in the calling thread, so
 *	that any failure is the `server` command's error. Returns 0 or an
 *	errno (error filled).
 */

int
Server::OpenSockets(ListenError &error)
{
    const ServerOptions &o = options_;
    int err = 0;
    if (o.adoptFd >= 0) {
	Listener l;
	bool isUnix;
	err = AdoptListener(o.adoptFd, l, isUnix);
	if (!err) {
	    listeners_.push_back(std::move(l));
	}
    } else if (!o.unixPath.empty()) {
	Listener l;
	err = OpenUnixListener(o.unixPath, false, o.unixMode, o.tcp.backlog,
		l.fd, l.file);
	l.address = o.unixPath;
	l.isUnix = true;
	if (!err) {
	    listeners_.push_back(std::move(l));
	}
    } else if (OpenListeners(o.tcp, listeners_, error)) {
	return -1;
    }
    if (!err && !o.controlPath.empty()) {
	err = control_.Open(o.controlPath, o.controlMode);
    }
    if (!err) {
	err = MakeSeqpacketPair(regDispatcherEnd_, regWorkerEnd_);
    }
    if (!err) {
	err = wakeup_.Open();
    }
    if (!err) {
	err = page_.Map(sizeof(Counters));
    }
    if (!err) {
	err = OpenPoller();
    }
    if (err) {
	for (Listener &l : listeners_) {
	    RemoveSocketFile(l.address, l.file);	/* Ours: we made it. */
	}
	control_.Remove();
    }
    error.posixError = err;
    return err;
}

/*
 * OpenPoller --
 *	Opens the poll set with the wake-up pipe in it; the rest come and go
 *	(see PrepareWait). Returns 0 or errno.
 */

int
Server::OpenPoller()
{
    int err = poller_.Open();
    if (!err) {
	err = poller_.Add(wakeup_.ReadFd(), Token(Source::Wakeup, 0));
    }
    return err;
}

/* options with the defaults filled in that depend on this process. */
static ServerOptions
WithDefaults(ServerOptions options)
{
    if (options.allowUids.empty()) {
	options.allowUids.push_back(ProcessUid());
    }
    if (!options.proxyFromSet) {
	options.proxyFrom.Add("127.0.0.0/8");
	options.proxyFrom.Add("::1");
    }
    return options;
}

/* The limits of the waits for a PROXY header and for a JOIN. */
static Handshakes::Limits
HandshakeLimits(const ServerOptions &options)
{
    Handshakes::Limits limits;
    limits.headerTimeout = std::chrono::milliseconds(options.proxyTimeoutMs);
    limits.maxHeaderWaits = kMaxHeaderWaits;
    limits.joinTimeout = kJoinTimeout;
    limits.maxJoinWaits = kMaxJoinWaits;
    return limits;
}

Server::Server(PassKey, const ServerOptions &options)
    : options_(WithDefaults(options)),
      handshakes_(*this, poller_, control_, HandshakeLimits(options_),
	      Handshakes::Tags{Token(Source::Header, 0),
		      Token(Source::Joining, 0)})
{
}

int
Server::Open(const ServerOptions &options, std::unique_ptr<Server> &server,
	ListenError &error)
{
    auto s = std::make_unique<Server>(PassKey{}, options);
    if (s->OpenSockets(error)) {
	s->options_.unixPath.clear();	/* Removed, or not ours. */
	s->ReleaseAdopted();
	return -1;
    }
    s->port_ = s->listeners_.front().port;
    for (const Listener &l : s->listeners_) {
	s->addresses_.push_back(l.address);
    }
    s->counters_ = ::new (s->page_.Address()) Counters();
    s->ownerPid_ = ProcessId();
    SignalBlock signalsGoToTclThreads;
    if (Tcl_CreateThread(&s->thread_, ThreadMain, s.get(),
	    TCL_THREAD_STACK_DEFAULT, TCL_THREAD_JOINABLE) != TCL_OK) {
	s->ReleaseAdopted();	/* Its socket files go with it. */
	error.posixError = EAGAIN;
	return EAGAIN;
    }
    s->threadStarted_ = true;

    /*
     * Return only once the dispatcher runs: a thread that is still
     * starting may be inside the allocator, and a child forked at that
     * moment from an allocator without fork handlers (AddressSanitizer's)
     * would inherit its lock held. Workers are usually forked right after
     * `server`.
     */

    std::unique_lock<std::mutex> lock(s->startMutex_);
    s->started_.wait(lock, [&s] { return s->running_; });
    lock.unlock();
    server = std::move(s);
    return 0;
}

/*
 * ReleaseAdopted --
 *	On a failed Open: an adopted (-fd) descriptor is still the caller's,
 *	so it is not closed with the server.
 */

void
Server::ReleaseAdopted()
{
    if (options_.adoptFd >= 0 && !listeners_.empty()) {
	listeners_.front().fd.Release();
    }
}

/*
 * ~Server --
 *	In the process that opened it: stops and joins the dispatcher, then
 *	closes everything and removes its socket files. In a forked child,
 *	where no dispatcher runs, only this process's copies are closed.
 */

Server::~Server()
{
    if (OwnedHere()) {
	if (threadStarted_) {
	    stopping_.store(true);
	    wakeup_.Signal();
	    int result;
	    Tcl_JoinThread(thread_, &result);
	}
	control_.Remove();
	for (Listener &l : listeners_) {
	    RemoveSocketFile(l.address, l.file);
	}
    }
    if (counters_) {
	counters_->~Counters();
    }
}

void
Server::CloseDispatcherCopies()
{
    for (Listener &l : listeners_) {
	l.fd.Reset();
    }
    control_.CloseCopy();
    regDispatcherEnd_.Reset();
    wakeup_.Close();
    poller_.Close();
    for (auto &entry : workers_) {
	entry.second.fd.Reset();
    }
    handshakes_.CloseCopies();
    table_.ForEachConn([](PendingConn &c) { c.fd.Reset(); });
}

Tcl_ThreadCreateType
Server::ThreadMain(ClientData clientData)
{
    static_cast<Server *>(clientData)->Run();
#ifdef _WIN32
    Tcl_ExitThread(0);		/* Tcl_JoinThread there waits for it. */
#else
    Tcl_FinalizeThread();	/* What Tcl keeps per thread: freed. */
#endif
    TCL_THREAD_CREATE_RETURN;
}

bool
Server::IntakePaused() const
{
    return Clock::now() < resumeAccept_;
}

/*
 * PauseIntake --
 *	Stops taking anything in (connections, joining workers,
 *	registrations) for a moment, after the process ran out of
 *	descriptors or memory: those sockets stay readable, and watching
 *	them meanwhile would spin.
 */

void
Server::PauseIntake()
{
    resumeAccept_ = Clock::now() + kAcceptBackoff;
}

/*
 * AcceptOne --
 *	Accepts one connection from a listener or the control socket.
 *	Returns Accepted; Skip when only that connection failed (try the
 *	next); Stop when none is waiting, or the process is out of
 *	something and intake pauses. Failures are counted.
 */

Server::Accept
Server::AcceptOne(int fd, UniqueFd &conn, std::string &peer)
{
    int err = AcceptConnection(fd, conn, peer);
    if (err == 0) {
	return Accept::Accepted;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) {
	return Accept::Stop;
    }
    counters_->acceptErrors++;
    if (err == ECONNABORTED || err == EINTR || err == EPROTO
	    || err == EPERM) {
	Log(LogKind::Accept, "warning", std::string("accept failed: ")
		+ Tcl_ErrnoMsg(err) + "; skipped that connection");
	return Accept::Skip;
    }
    PauseIntake();		/* EMFILE, ENFILE, ENOBUFS, ENOMEM... */
    Log(LogKind::Accept, "error", std::string("accept failed: ")
	    + Tcl_ErrnoMsg(err) + "; not accepting for "
	    + std::to_string(kAcceptBackoff.count()) + " ms");
    return Accept::Stop;
}

/*
 * CanAccept --
 *	Backpressure: accept only while the workers have a credit left and
 *	no connection is waiting for one (re-sent, or its PROXY header
 *	done). Connections
 *	still waiting for their header do not count: a worker is taken only
 *	once a header is whole, so silent ones must not shut out the rest
 *	(Handshakes bounds their number instead).
 */

bool
Server::CanAccept() const
{
    return !table_.HasPending() && table_.TotalCredits() > 0;
}

static int
MillisecondsUntil(Clock::time_point t)
{
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
	    t - Clock::now()).count();
    return ms < 0 ? 0 : static_cast<int>(ms) + 1;
}

/*
 * PrepareWait --
 *	Brings the poll set in line with what the dispatcher can take now:
 *	the listeners only while a connection can be taken (backpressure),
 *	the registration socket unless intake is paused, the control socket
 *	unless it is or as many processes as may are waiting to join.
 *	Returns the poll timeout: the nearest PROXY header or JOIN deadline
 *	or end of a pause, or -1.
 */

int
Server::PrepareWait()
{
    Clock::time_point next = handshakes_.NextDeadline();
    bool paused = IntakePaused();
    if (paused) {
	next = std::min(next, resumeAccept_);
    }
    int timeoutMs = next == Clock::time_point::max() ? -1
	    : MillisecondsUntil(next);
    auto watch = [this](bool want, int fd, uint64_t token) {
	if (want) {
	    poller_.Add(fd, token);
	} else {
	    poller_.Remove(fd);
	}
    };
    bool listen = CanAccept() && !paused;
    if (listen != listening_) {
	for (size_t i = 0; i < listeners_.size(); i++) {
	    watch(listen, listeners_[i].fd.Get(), Token(Source::Listener, i));
	}
	listening_ = listen;
    }
    if (!paused != registering_) {
	watch(!paused, regDispatcherEnd_.Get(),
		Token(Source::Registration, 0));
	registering_ = !paused;
    }
    bool join = control_.Valid() && !paused && handshakes_.HasRoomToJoin();
    if (join != joining_) {
	watch(join, control_.Fd(), Token(Source::Control, 0));
	joining_ = join;
    }
    return timeoutMs;
}

/*
 * Run --
 *	The dispatcher loop. Sleeps in the poller without the lock;
 *	everything it does to its descriptors happens with the lock held, so
 *	fork() sees a consistent set.
 */

void
Server::Run()
{
    /*
     * Sized once: the wait below runs without the lock that fork() waits
     * for, so it must not allocate (an allocator without fork handlers,
     * such as AddressSanitizer's, would leave a child forked meanwhile
     * deadlocked in malloc).
     */

    std::vector<uint64_t> tokens;
    tokens.reserve(kMaxEvents);
    {
	std::lock_guard<std::mutex> lock(startMutex_);
	running_ = true;
    }
    started_.notify_one();

    while (!stopping_.load()) {
	try {
	    int timeoutMs;
	    {
		std::lock_guard<std::mutex> lock(mutex_);
		timeoutMs = PrepareWait();
	    }
	    if (poller_.Wait(timeoutMs, tokens) != 0) {
		continue;		/* EINTR */
	    }
	    std::lock_guard<std::mutex> lock(mutex_);
	    ServiceOnce(tokens);
	} catch (const std::exception &) {
	    /*
	     * Out of memory in the bookkeeping. Nothing is half-done (each
	     * step moves a connection whole), so pause intake and go on.
	     */

	    std::lock_guard<std::mutex> lock(mutex_);
	    PauseIntake();
	}
    }
}

/*
 * ServiceOnce --
 *	Handles one round of readiness: wake-ups, new workers, worker
 *	messages, PROXY headers, then re-sent connections before new ones.
 */

void
Server::ServiceOnce(const std::vector<uint64_t> &tokens)
{
    for (uint64_t token : tokens) {
	switch (SourceOf(token)) {
	case Source::Wakeup:
	    wakeup_.Drain();
	    break;
	case Source::Registration:
	    ReceiveRegistrations();
	    break;
	case Source::Control:
	    AcceptControl();
	    break;
	case Source::Worker:
	    ServiceWorker(ValueOf(token));
	    break;
	case Source::Header:
	    handshakes_.ReadHeader(static_cast<int>(ValueOf(token)));
	    break;
	case Source::Joining:
	    handshakes_.ReadJoin(static_cast<int>(ValueOf(token)));
	    break;
	case Source::Listener:
	    break;		/* After re-sent connections, below. */
	}
    }
    handshakes_.Expire(Clock::now());
    DispatchPending();
    for (uint64_t token : tokens) {
	if (SourceOf(token) == Source::Listener) {
	    AcceptFrom(listeners_[ValueOf(token)]);
	}
    }
    Publish();
}

/*
 * AddWorker --
 *	Takes a new worker: its private channel joins the poll set; the
 *	worker is ready once it says READY. pid is its process, which on
 *	Windows each connection sent to it is duplicated for.
 */

void
Server::AddWorker(UniqueFd channel, int pid)
{
    WorkerId id = table_.AddWorker();
    if (poller_.Add(channel.Get(), Token(Source::Worker, id)) != 0) {
	table_.RemoveWorker(id);
	counters_->rejected++;		/* Could not watch it: refused. */
	return;
    }
    workers_.emplace(id, WorkerChannel{std::move(channel), pid});
    counters_->registered++;
}

/*
 * ReceiveRegistrations --
 *	Takes every REGISTER waiting on the registration socket; each brings
 *	the dispatcher's end of a new worker's private channel. Anything
 *	else is garbage: counted and closed.
 */

void
Server::ReceiveRegistrations()
{
    for (;;) {
	char buf[kMaxMessage];
	UniqueFd passed;
	long n = ReceiveMessage(regDispatcherEnd_.Get(), buf, sizeof(buf),
		passed, Blocking::No, PassedSocket::Take);
	if (n == -EAGAIN || n == 0) {
	    return;
	}
	Message msg;
	if (n < 0 && n != -EMSGSIZE && n != -EMFILE) {
	    PauseIntake();		/* ENOBUFS, ENOMEM: it stays readable. */
	    return;
	}
	if (n < 0 || !Message::Parse(buf, n, msg)
		|| msg.header.type != MsgType::Register || !passed.Valid()
		|| !IsSocket(passed.Get())) {
	    counters_->rejected++;	/* Garbage, or no room for its fd. */
	    Log(LogKind::Registration, "warning", n == -EMFILE
		    ? "refused a worker's registration: no descriptor left"
		    : "rejected a malformed registration message");
	    continue;
	}
	AddWorker(std::move(passed), static_cast<int>(msg.header.pid));
    }
}

/*
 * AcceptControl --
 *	A process connects to the control socket to join. Its connection
 *	waits (boundedly, watched like the rest) for the JOIN message that
 *	says who it is; see Handshakes::ReadJoin. Once kMaxJoinWaits wait,
 *	the rest stay in the listen backlog until there is room, never
 *	closed for it. On Unix a process of a user -allowuid does not name
 *	is closed at once.
 */

void
Server::AcceptControl()
{
    while (handshakes_.HasRoomToJoin()) {
	UniqueFd channel;
	std::string unused;
	Accept got = AcceptOne(control_.Fd(), channel, unused);
	if (got == Accept::Stop) {
	    return;
	}
	if (got == Accept::Skip) {
	    continue;
	}
	if (!control_.AllowsPeer(channel.Get(), options_.allowUids)) {
	    counters_->refused++;	/* Unix: the kernel knows its uid. */
	    int uid = -1;
	    PeerUid(channel.Get(), uid);
	    Log(LogKind::Control, "warning", "refused a process joining"
		    " through the control socket: uid " + std::to_string(uid)
		    + " is not allowed (-allowuid)");
	    continue;
	}
	handshakes_.AwaitJoin(std::move(channel));
    }
}

/*
 * ServiceWorker --
 *	Reads what a worker sent: READY gives it one credit, CREDIT sets its
 *	room (see DispatchTable), ACK drops the dispatcher's copy of its
 *	oldest unacknowledged connection. End of file, an
 *	error or a protocol violation removes the worker.
 */

void
Server::ServiceWorker(WorkerId id)
{
    if (!table_.HasWorker(id)) {
	return;			/* Dropped earlier in this round. */
    }
    int fd = workers_.at(id).fd.Get();
    for (;;) {
	char buf[kMaxMessage];
	UniqueFd passed;
	long n = ReceiveMessage(fd, buf, sizeof(buf), passed, Blocking::No,
		PassedSocket::Refuse);
	if (n == -EAGAIN) {
	    return;
	}
	Message msg;
	bool ok = n > 0 && !passed.Valid() && Message::Parse(buf, n, msg);
	if (ok && msg.header.type == MsgType::Ready) {
	    ok = table_.MarkReady(id);
	} else if (ok && msg.header.type == MsgType::Credit) {
	    CreditBody credit = msg.Credit();
	    ok = table_.SetCredit(id, credit.room, credit.open);
	} else if (ok && msg.header.type == MsgType::Ack) {
	    std::optional<PendingConn> conn = table_.Ack(id);
	    ok = conn.has_value();
	    if (ok) {
		conn->fd.Reset();	/* Once ACKed, we close our copy. */
		counters_->acked++;
	    }
	} else {
	    ok = false;
	}
	if (!ok) {
	    if (n > 0 || n == -EMSGSIZE) {
		counters_->rejected++;	/* Not our protocol: garbage. */
		Log(LogKind::Worker, "warning", "dropped worker (pid "
			+ std::to_string(workers_.at(id).pid) + "): it broke"
			" the protocol");
	    }
	    DropWorker(id);		/* Or simply gone. */
	    return;
	}
    }
}

void
Server::DropWorker(WorkerId id)
{
    table_.RemoveWorker(id);
    auto it = workers_.find(id);
    if (it != workers_.end()) {
	poller_.Remove(it->second.fd.Get());
	workers_.erase(it);
    }
}

/*
 * Dispatch --
 *	Sends conn to the worker with the most credits (the one ready
 *	longest among equals: see DispatchTable::TakeReady). A worker whose
 *	channel fails is dropped and the next one tried. With no worker
 *	left, conn waits in the pending queue.
 */

void
Server::Dispatch(PendingConn conn)
{
    while (std::optional<WorkerId> id = table_.TakeReady()) {
	Message msg = Message::Make(MsgType::Conn);
	msg.SetText(conn.peer);
	const WorkerChannel &worker = workers_.at(*id);
	int err = SendMessage(worker.fd.Get(), msg.Data(), msg.Size(),
		PassFd{conn.fd.Get(), worker.pid});
	if (err != 0) {
	    Log(LogKind::Worker, "warning", "dropped worker (pid "
		    + std::to_string(worker.pid) + "): couldn't send it a"
		    " connection: " + Tcl_ErrnoMsg(err));
	    DropWorker(*id);
	    continue;
	}
	counters_->dispatched++;
	if (conn.sends++ > 0) {
	    counters_->redispatched++;
	}
	table_.Sent(*id, std::move(conn));
	return;
    }
    table_.PushPending(std::move(conn));
}

void
Server::DispatchPending()
{
    while (table_.ReadyCount() > 0 && table_.HasPending()) {
	Dispatch(std::move(*table_.TakePending()));
    }
}

/*
 * AcceptFrom --
 *	Accepts while backpressure allows. Transient failures are counted
 *	and skipped; running out of descriptors or memory pauses accepting
 *	for a moment instead of spinning. With the PROXY protocol on, a
 *	connection from a trusted proxy first waits for its header.
 */

void
Server::AcceptFrom(const Listener &listener)
{
    while (CanAccept()) {
	PendingConn conn;
	Accept got = AcceptOne(listener.fd.Get(), conn.fd, conn.peer);
	if (got == Accept::Stop) {
	    return;
	}
	if (got == Accept::Skip) {
	    continue;
	}
	counters_->accepted++;
	if (listener.isUnix) {
	    int uid = -1;
	    PeerUid(conn.fd.Get(), uid);
	    conn.peer = listener.address + " " + std::to_string(uid);
	} else if (options_.proxyProtocol) {
	    std::string address = conn.peer.substr(0, conn.peer.find(' '));
	    if (!options_.proxyFrom.Matches(address)) {
		counters_->proxyErrors++;
		Log(LogKind::Proxy, "warning", "closed a connection from "
			+ address + ": not a trusted proxy (-proxyfrom)");
		continue;	/* Not a trusted proxy: closed. */
	    }
	    handshakes_.AwaitHeader(std::move(conn));
	    continue;
	}
	Dispatch(std::move(conn));
    }
}

void
Server::Publish()
{
    counters_->workers.store(table_.WorkerCount());
    counters_->ready.store(table_.ReadyCount());
    counters_->credits.store(table_.TotalCredits());
    counters_->held.store(table_.HeldCount());
    counters_->pending.store(table_.PendingCount()
	    + handshakes_.HeaderWaits());
}

/* A header is whole: the connection goes to a worker. */
void
Server::HeaderRead(PendingConn conn)
{
    Dispatch(std::move(conn));
}

/* A process has joined: its channel is a new worker's. */
void
Server::Joined(UniqueFd channel, int pid)
{
    AddWorker(std::move(channel), pid);
}

/*
 * Failed --
 *	A connection that broke off its handshake: counted, and told to -log
 *	(peer: the connection's address, for a PROXY header wait).
 */

void
Server::Failed(Handshakes::Failure why, const std::string &peer)
{
    using Failure = Handshakes::Failure;
    std::string from = "closed a connection from "
	    + peer.substr(0, peer.find(' ')) + ": ";
    switch (why) {
    case Failure::BadHeader:
	counters_->proxyErrors++;
	Log(LogKind::Proxy, "warning", from + "malformed PROXY header");
	break;
    case Failure::EndedHeader:
	counters_->proxyErrors++;
	Log(LogKind::Proxy, "warning", from
		+ "it ended before its PROXY header");
	break;
    case Failure::LateHeader:
	counters_->proxyErrors++;
	Log(LogKind::Proxy, "warning", from + "no PROXY header within "
		+ std::to_string(options_.proxyTimeoutMs) + " ms");
	break;
    case Failure::DroppedHeader:
	counters_->proxyErrors++;
	Log(LogKind::Proxy, "warning", from + "the oldest of too many"
		" waiting for their PROXY header");
	break;
    case Failure::UnwatchedHeader:
	counters_->proxyErrors++;
	Log(LogKind::Proxy, "error", from
		+ "couldn't watch it for its PROXY header");
	break;
    case Failure::BadJoin:
	counters_->rejected++;
	Log(LogKind::Control, "warning", "closed a control-socket"
		" connection that did not send JOIN");
	break;
    case Failure::LateJoin:
	counters_->rejected++;
	Log(LogKind::Control, "warning", "closed a control-socket connection"
		" that sent no JOIN in time");
	break;
    case Failure::RefusedJoin:
	counters_->refused++;
	Log(LogKind::Control, "warning", "refused a process joining through"
		" the control socket: wrong credential");
	break;
    }
}

/*
 * Log --
 *	Tells -log, if given and the rate limit for kind allows, why the
 *	dispatcher dropped or refused something. Called in the dispatcher
 *	thread with the lock held; the callback only queues the message.
 */

void
Server::Log(LogKind kind, const char *level, std::string message)
{
    uint64_t suppressed;
    if (!options_.log || !logLimiter_.Allow(kind, Clock::now(), suppressed)) {
	return;
    }
    if (suppressed > 0) {
	message += " (and " + std::to_string(suppressed)
		+ " more like this not logged)";
    }
    std::string where = port_ ? "socketserver on port " + std::to_string(port_)
	    : "socketserver at " + addresses_.front();
    options_.log(level, where + ": " + message);
}

} // namespace socketserver

/*
 * ssServer.cpp --
 *
 *	The dispatcher: a thread per server that accepts a connection only
 *	while some worker is ready, sends it to the worker that has waited
 *	longest, keeps its own copy until the worker acknowledges receipt,
 *	and re-sends it to another worker if the first one dies before that.
 */

#include "ssServer.h"

#include "ssProtocol.h"

#include <cerrno>
#include <new>

namespace socketserver {

/* How long accepting pauses after the process runs out of descriptors. */
constexpr std::chrono::milliseconds kAcceptBackoff{100};

int
Server::Open(const ListenSpec &spec, std::unique_ptr<Server> &server,
	ListenError &error)
{
    auto s = std::make_unique<Server>(Token{});
    if (OpenListeners(spec, s->listeners_, error)) {
	return -1;
    }
    s->port_ = s->listeners_.front().port;
    for (const Listener &l : s->listeners_) {
	s->addresses_.push_back(l.address);
    }
    int err = MakeSeqpacketPair(s->regDispatcherEnd_, s->regWorkerEnd_);
    if (!err) {
	err = s->wakeup_.Open();
    }
    if (!err) {
	err = s->page_.Map(sizeof(Counters));
    }
    if (err) {
	error.posixError = err;
	return err;
    }
    s->counters_ = ::new (s->page_.Address()) Counters();
    s->ownerPid_ = ProcessId();
    SignalBlock signalsGoToTclThreads;
    if (Tcl_CreateThread(&s->thread_, ThreadMain, s.get(),
	    TCL_THREAD_STACK_DEFAULT, TCL_THREAD_JOINABLE) != TCL_OK) {
	error.posixError = EAGAIN;
	return EAGAIN;
    }
    s->threadStarted_ = true;
    server = std::move(s);
    return 0;
}

/*
 * ~Server --
 *	In the process that opened it: stops and joins the dispatcher, then
 *	closes everything. In a forked child, where no dispatcher runs, only
 *	this process's copies are closed.
 */

Server::~Server()
{
    if (threadStarted_ && OwnedHere()) {
	stopping_.store(true);
	wakeup_.Signal();
	int result;
	Tcl_JoinThread(thread_, &result);
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
    regDispatcherEnd_.Reset();
    wakeup_.Close();
    for (auto &entry : workerFds_) {
	entry.second.Reset();
    }
    table_.ForEachConn([](PendingConn &c) { c.fd.Reset(); });
}

Tcl_ThreadCreateType
Server::ThreadMain(ClientData clientData)
{
    try {
	static_cast<Server *>(clientData)->Run();
    } catch (...) {
	/* Out of memory in the bookkeeping: the dispatcher stops. */
    }
    TCL_THREAD_CREATE_RETURN;
}

bool
Server::ListenersPaused() const
{
    return std::chrono::steady_clock::now() < resumeAccept_;
}

/*
 * Run --
 *	The dispatcher loop. Sleeps in poll() without the lock; listens
 *	only while a worker is ready and no re-sent connection is waiting.
 */

void
Server::Run()
{
    std::vector<int> fds;
    std::vector<bool> ready;
    std::vector<WorkerId> ids;

    while (!stopping_.load()) {
	int timeoutMs = -1;
	{
	    std::lock_guard<std::mutex> lock(mutex_);
	    fds.assign({wakeup_.ReadFd(), regDispatcherEnd_.Get()});
	    ids = table_.WorkerIds();
	    for (WorkerId id : ids) {
		fds.push_back(workerFds_.at(id).Get());
	    }
	    if (table_.ReadyCount() > 0 && !table_.HasPending()) {
		if (ListenersPaused()) {
		    timeoutMs = static_cast<int>(std::chrono::duration_cast<
			    std::chrono::milliseconds>(resumeAccept_ -
			    std::chrono::steady_clock::now()).count()) + 1;
		} else {
		    for (const Listener &l : listeners_) {
			fds.push_back(l.fd.Get());
		    }
		}
	    }
	}
	if (WaitReadable(fds, ready, timeoutMs) != 0) {
	    continue;		/* EINTR */
	}
	std::lock_guard<std::mutex> lock(mutex_);
	ServiceOnce(fds, ready, ids);
    }
}

void
Server::ServiceOnce(const std::vector<int> &fds,
	const std::vector<bool> &ready, const std::vector<WorkerId> &ids)
{
    if (ready[0]) {
	wakeup_.Drain();
    }
    if (ready[1]) {
	ReceiveRegistrations();
    }
    for (size_t i = 0; i < ids.size(); i++) {
	if (ready[2 + i]) {
	    ServiceWorker(ids[i]);
	}
    }
    DispatchPending();
    for (size_t i = 2 + ids.size(); i < fds.size(); i++) {
	if (ready[i]) {
	    AcceptFrom(fds[i]);
	}
    }
    Publish();
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
		passed, false);
	if (n == -EAGAIN || n == 0) {
	    return;
	}
	Message msg;
	if (n < 0 || !Message::Parse(buf, n, msg)
		|| msg.header.type != MsgType::Register || !passed.Valid()
		|| !IsSocket(passed.Get())) {
	    counters_->rejected++;
	    if (n < 0 && n != -EMSGSIZE) {
		return;
	    }
	    continue;
	}
	WorkerId id = table_.AddWorker();
	workerFds_.emplace(id, std::move(passed));
	counters_->registered++;
    }
}

/*
 * ServiceWorker --
 *	Reads what a worker sent: READY puts it on the ready queue, ACK
 *	drops the dispatcher's copy of its connection. End of file, an
 *	error or a protocol violation removes the worker.
 */

void
Server::ServiceWorker(WorkerId id)
{
    int fd = workerFds_.at(id).Get();
    for (;;) {
	char buf[kMaxMessage];
	UniqueFd passed;
	long n = ReceiveMessage(fd, buf, sizeof(buf), passed, false);
	if (n == -EAGAIN) {
	    return;
	}
	Message msg;
	bool ok = n > 0 && !passed.Valid() && Message::Parse(buf, n, msg);
	if (ok && msg.header.type == MsgType::Ready) {
	    ok = table_.MarkReady(id);
	} else if (ok && msg.header.type == MsgType::Ack) {
	    std::optional<PendingConn> conn = table_.Ack(id);
	    ok = conn.has_value();
	    if (ok) {
		counters_->acked++;
	    }
	} else {
	    ok = false;
	}
	if (!ok) {
	    if (n != 0) {
		counters_->rejected++;
	    }
	    DropWorker(id);
	    return;
	}
    }
}

void
Server::DropWorker(WorkerId id)
{
    table_.RemoveWorker(id);
    workerFds_.erase(id);
}

/*
 * Dispatch --
 *	Sends conn to the worker that has been ready longest. A worker whose
 *	channel fails is dropped and the next one tried. With no worker
 *	left, conn waits in the pending queue.
 */

void
Server::Dispatch(PendingConn conn)
{
    while (std::optional<WorkerId> id = table_.TakeReady()) {
	Message msg = Message::Make(MsgType::Conn);
	msg.SetText(conn.peer);
	if (SendMessage(workerFds_.at(*id).Get(), msg.Data(), msg.Size(),
		conn.fd.Get()) != 0) {
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
 *	Accepts as many connections as there are ready workers. Transient
 *	failures are counted and skipped; running out of descriptors or
 *	memory pauses accepting for a moment instead of spinning.
 */

void
Server::AcceptFrom(int listenFd)
{
    while (table_.ReadyCount() > 0 && !table_.HasPending()) {
	PendingConn conn;
	int err = AcceptConnection(listenFd, conn.fd, conn.peer);
	if (err == EAGAIN || err == EWOULDBLOCK) {
	    return;
	}
	if (err) {
	    counters_->acceptErrors++;
	    if (err == ECONNABORTED || err == EINTR || err == EPROTO
		    || err == EPERM) {
		continue;	/* That connection is gone; try the next. */
	    }
	    resumeAccept_ = std::chrono::steady_clock::now() + kAcceptBackoff;
	    return;		/* EMFILE, ENFILE, ENOBUFS, ENOMEM... */
	}
	counters_->accepted++;
	Dispatch(std::move(conn));
    }
}

void
Server::Publish()
{
    counters_->workers.store(table_.WorkerCount());
    counters_->ready.store(table_.ReadyCount());
    counters_->pending.store(table_.PendingCount());
}

} // namespace socketserver

/*
 * stress_test.cpp --
 *
 *	A stress test of the real dispatcher (generic/ssServer.cpp over
 *	unix/ssUnixPlatform.cpp), for ThreadSanitizer: many threads act as
 *	workers, speaking the protocol of generic/ssProtocol.h over real
 *	SEQPACKET channels registered through the server's registration
 *	socket; many threads act as TCP clients; some workers die before or
 *	after acknowledging a connection, a hostile thread writes garbage to
 *	the registration socket, servers are opened and destroyed while
 *	connections are in flight. Every connection must arrive exactly once,
 *	and the counters must add up.
 *
 *	Built as its own program, with -DSS_STRESS_TEST, by the stresstest
 *	target that `make test-tsan` (ThreadSanitizer) and `make test-asan`
 *	run: unlike the other unit tests it needs sockets, threads and the
 *	Tcl library itself (Tcl_CreateThread, Tcl_JoinThread), linked without
 *	stubs. Without SS_STRESS_TEST this file is empty, so a unit-test
 *	build that takes every file in tests/unit is not affected.
 */

#ifdef SS_STRESS_TEST

#include "ssProtocol.h"
#include "ssServer.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace socketserver;

namespace {

/* Every blocking call in this file gives up after this long. */
constexpr int kTimeoutSeconds = 20;

/*
 * Tcl's subsystems (its allocator, its thread bookkeeping) are set up
 * once, as an application embedding Tcl would.
 */
class TclEnvironment : public ::testing::Environment {
public:
    void SetUp() override { Tcl_FindExecutable(nullptr); }
};

[[maybe_unused]] const ::testing::Environment *const tclEnvironment =
	::testing::AddGlobalTestEnvironment(new TclEnvironment);

void
SetTimeout(int fd)
{
    timeval tv{kTimeoutSeconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A server on 127.0.0.1, port chosen by the system. */
std::unique_ptr<Server>
OpenServer()
{
    ServerOptions options;
    options.tcp.host = "127.0.0.1";
    options.tcp.port = 0;
    std::unique_ptr<Server> server;
    ListenError error;
    EXPECT_EQ(Server::Open(options, server, error), 0)
	    << "errno " << error.posixError << " " << error.resolverMessage;
    return server;
}

/*
 * Waits (bounded, polling) until pred holds. Returns false on timeout.
 */
bool
WaitFor(const std::function<bool()> &pred)
{
    auto deadline = std::chrono::steady_clock::now()
	    + std::chrono::seconds(kTimeoutSeconds);
    while (!pred()) {
	if (std::chrono::steady_clock::now() > deadline) {
	    return false;
	}
	std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

/*
 * Registers a new worker channel with server, as `client` does: a
 * SEQPACKET pair, the dispatcher's end sent with REGISTER. Returns 0 or
 * errno; chan is this worker's end.
 */
int
Register(const Server &server, UniqueFd &chan)
{
    UniqueFd theirs;
    int err = MakeSeqpacketPair(chan, theirs);
    if (err) {
	return err;
    }
    SetTimeout(chan.Get());
    Message msg = Message::Make(MsgType::Register,
	    static_cast<uint32_t>(ProcessId()));
    return SendMessageWaiting(server.RegistrationFd(), msg.Data(),
	    msg.Size(), PassFd{theirs.Get(), ProcessId()},
	    kTimeoutSeconds * 1000);
}

int
Send(int chan, MsgType type)
{
    Message msg = Message::Make(type);
    return SendMessage(chan, msg.Data(), msg.Size(), kNoFd);
}

/*
 * What a worker does with a connection it has been sent: serve it, die
 * before or after acknowledging it, or break the protocol (READY instead
 * of ACK) and then go away.
 */
enum class Fate { Serve, DieBeforeAck, DieAfterAck, ViolateBeforeAck };

struct WorkerTally {
    std::atomic<int> served{0};
    std::atomic<int> diedBeforeAck{0};
    std::atomic<int> diedAfterAck{0};
    std::atomic<int> violated{0};
    std::atomic<int> registrations{0};
    std::atomic<int> protocolErrors{0};
};

/*
 * Reads one line (up to '\n') from a blocking socket. Returns false on
 * end-of-file, error or timeout before a whole line.
 */
bool
ReadLine(int fd, std::string &line)
{
    line.clear();
    char c;
    for (;;) {
	ssize_t n = read(fd, &c, 1);
	if (n <= 0) {
	    return false;
	}
	if (c == '\n') {
	    return true;
	}
	line += c;
    }
}

bool
WriteAll(int fd, const std::string &s)
{
    size_t done = 0;
    while (done < s.size()) {
	ssize_t n = send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
	if (n <= 0) {
	    return false;
	}
	done += static_cast<size_t>(n);
    }
    return true;
}

/*
 * A worker thread: registers, then READY / CONN / ACK / answer, over and
 * over. decide() says what to do with each connection; a worker that
 * "dies" closes its channel (and the connection) and registers anew, as
 * a replacement process would. Returns when the server goes away (end of
 * file on the channel).
 */
void
WorkerLoop(const Server &server, int index, std::function<Fate()> decide,
	WorkerTally &tally)
{
    UniqueFd chan;
    bool armed = false;
    for (;;) {
	if (!chan.Valid()) {
	    if (Register(server, chan) != 0) {
		return;			/* The server is closing. */
	    }
	    tally.registrations++;
	    armed = false;
	}
	if (!armed) {
	    if (Send(chan.Get(), MsgType::Ready) != 0) {
		return;
	    }
	    armed = true;
	}
	char buf[kMaxMessage];
	UniqueFd conn;
	long n = ReceiveMessage(chan.Get(), buf, sizeof(buf), conn,
		Blocking::Yes, PassedSocket::Take);
	if (n <= 0) {
	    return;			/* The server has gone (or timeout). */
	}
	armed = false;
	Message msg;
	if (!Message::Parse(buf, static_cast<size_t>(n), msg)
		|| msg.header.type != MsgType::Conn || !conn.Valid()) {
	    tally.protocolErrors++;
	    return;
	}
	SetTimeout(conn.Get());
	Fate fate = decide();
	if (fate == Fate::ViolateBeforeAck) {
	    Send(chan.Get(), MsgType::Ready);
	    /* The dispatcher drops this worker: end-of-file, then leave. */
	    char rest[kMaxMessage];
	    UniqueFd none;
	    ReceiveMessage(chan.Get(), rest, sizeof(rest), none, Blocking::Yes,
		    PassedSocket::Take);
	    conn.Reset();
	    chan.Reset();
	    tally.violated++;
	    continue;
	}
	if (fate == Fate::DieBeforeAck) {
	    conn.Reset();
	    chan.Reset();
	    tally.diedBeforeAck++;
	    continue;
	}
	if (Send(chan.Get(), MsgType::Ack) != 0) {
	    return;
	}
	if (fate == Fate::DieAfterAck) {
	    conn.Reset();
	    chan.Reset();
	    tally.diedAfterAck++;
	    continue;
	}
	std::string line;
	if (ReadLine(conn.Get(), line)) {
	    WriteAll(conn.Get(), line + " " + std::to_string(index) + "\n");
	}
	tally.served++;
    }
}

struct ClientTally {
    std::atomic<int> answered{0};
    std::atomic<int> eof{0};
    std::atomic<int> wrong{0};	/* An answer for another request. */
    std::atomic<int> failed{0};	/* Could not connect or send. */
};

/*
 * One client connection: sends "id", expects "id worker", and counts
 * what happened in tally.
 */
void
Client(int port, int id, ClientTally &tally)
{
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    SetTimeout(fd.Get());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd.Get(), reinterpret_cast<sockaddr *>(&addr),
	    sizeof(addr)) != 0
	    || !WriteAll(fd.Get(), std::to_string(id) + "\n")) {
	tally.failed++;
	return;
    }
    std::string line;
    if (!ReadLine(fd.Get(), line)) {
	tally.eof++;
	return;
    }
    if (line.compare(0, line.find(' '), std::to_string(id)) != 0) {
	tally.wrong++;
	return;
    }
    tally.answered++;
}

/*
 * Reads the shared counters continuously from another thread, as `info`
 * in any thread or process does, and checks that none ever goes down.
 */
class CounterWatcher {
public:
    explicit CounterWatcher(const Server &server)
	: thread_([this, &server] { Watch(server); }) {}
    ~CounterWatcher() { Stop(); }
    void Stop() {
	stop_.store(true);
	if (thread_.joinable()) {
	    thread_.join();
	}
    }
    int Decreases() const { return decreases_.load(); }
private:
    void Watch(const Server &server) {
	const Counters &c = server.Stats();
	uint64_t last[5] = {0, 0, 0, 0, 0};
	while (!stop_.load()) {
	    uint64_t now[5] = {c.accepted.load(), c.dispatched.load(),
		    c.acked.load(), c.redispatched.load(),
		    c.registered.load()};
	    for (int i = 0; i < 5; i++) {
		if (now[i] < last[i]) {
		    decreases_++;
		}
		last[i] = now[i];
	    }
	    (void) c.workers.load();
	    (void) c.ready.load();
	    (void) c.pending.load();
	    std::this_thread::yield();
	}
    }
    std::atomic<bool> stop_{false};
    std::atomic<int> decreases_{0};
    std::thread thread_;
};

/*
 * Runs clients threads, each making perClient connections one after the
 * other, against server, with workers threads deciding by decide().
 */
struct RunTally {
    WorkerTally workers;
    ClientTally clients;
    uint64_t accepted, dispatched, acked, redispatched, rejected;
    int decreases;
};

void
Drive(std::unique_ptr<Server> server, int nWorkers, int nClients,
	int perClient, const std::function<Fate()> &decide, RunTally &run,
	const std::function<void(const Server &)> &alongside = nullptr)
{
    ASSERT_TRUE(server);
    const Server &s = *server;
    CounterWatcher watcher(s);
    std::vector<std::thread> workers;
    for (int i = 0; i < nWorkers; i++) {
	workers.emplace_back(WorkerLoop, std::cref(s), i, decide,
		std::ref(run.workers));
    }
    std::thread side;
    if (alongside) {
	side = std::thread(alongside, std::cref(s));
    }
    std::vector<std::thread> clients;
    for (int i = 0; i < nClients; i++) {
	clients.emplace_back([&, i] {
	    for (int j = 0; j < perClient; j++) {
		Client(s.Port(), i * perClient + j, run.clients);
	    }
	});
    }
    for (std::thread &t : clients) {
	t.join();
    }
    if (side.joinable()) {
	side.join();
    }
    int total = nClients * perClient;
    const Counters &c = s.Stats();
    EXPECT_TRUE(WaitFor([&] {
	return c.acked.load() == static_cast<uint64_t>(total)
		&& c.ready.load() == static_cast<uint32_t>(nWorkers);
    })) << "acked " << c.acked.load() << " ready " << c.ready.load();
    watcher.Stop();
    run.accepted = c.accepted.load();
    run.dispatched = c.dispatched.load();
    run.acked = c.acked.load();
    run.redispatched = c.redispatched.load();
    run.rejected = c.rejected.load();
    run.decreases = watcher.Decreases();

    /* Closing the server ends every worker: end-of-file on its channel. */
    server.reset();
    for (std::thread &t : workers) {
	t.join();
    }
}

} // namespace

/*
 * Every connection arrives at exactly one worker, once; the counters
 * agree with what the clients saw.
 */
TEST(DispatcherStress, EveryConnectionServedOnce)
{
    RunTally run;
    Drive(OpenServer(), 8, 6, 250, [] { return Fate::Serve; }, run);
    EXPECT_EQ(run.clients.answered.load(), 1500);
    EXPECT_EQ(run.clients.eof.load(), 0);
    EXPECT_EQ(run.clients.wrong.load(), 0);
    EXPECT_EQ(run.clients.failed.load(), 0);
    EXPECT_EQ(run.workers.served.load(), 1500);
    EXPECT_EQ(run.workers.protocolErrors.load(), 0);
    EXPECT_EQ(run.accepted, 1500u);
    EXPECT_EQ(run.dispatched, 1500u);
    EXPECT_EQ(run.acked, 1500u);
    EXPECT_EQ(run.redispatched, 0u);
    EXPECT_EQ(run.decreases, 0);
}

/*
 * Workers die at random: before ACK (the dispatcher must re-send the
 * connection to another worker) or after it (that client alone sees
 * end-of-file); some break the protocol while holding a connection (the
 * dispatcher drops them, counts it, and re-sends the connection).
 * Replacements register all the while.
 */
TEST(DispatcherStress, DyingWorkersLoseOnlyWhatTheyAcknowledged)
{
    RunTally run;
    std::mutex randomLock;
    std::mt19937 random(12345);
    auto decide = [&] {
	std::lock_guard<std::mutex> lock(randomLock);
	int roll = static_cast<int>(random() % 100);
	return roll < 8 ? Fate::DieBeforeAck
		: roll < 12 ? Fate::DieAfterAck
		: roll < 15 ? Fate::ViolateBeforeAck : Fate::Serve;
    };
    Drive(OpenServer(), 8, 6, 200, decide, run);
    int total = 1200;
    EXPECT_EQ(run.clients.failed.load(), 0);
    EXPECT_EQ(run.clients.wrong.load(), 0);
    EXPECT_EQ(run.clients.answered.load() + run.clients.eof.load(), total);
    EXPECT_EQ(run.clients.eof.load(), run.workers.diedAfterAck.load());
    EXPECT_GT(run.workers.diedBeforeAck.load(), 0);
    EXPECT_GT(run.workers.violated.load(), 0);
    EXPECT_EQ(run.redispatched,
	    static_cast<uint64_t>(run.workers.diedBeforeAck.load()
		+ run.workers.violated.load()));
    EXPECT_EQ(run.rejected,
	    static_cast<uint64_t>(run.workers.violated.load()));
    EXPECT_EQ(run.accepted, static_cast<uint64_t>(total));
    EXPECT_EQ(run.acked, static_cast<uint64_t>(total));
    EXPECT_EQ(run.dispatched, run.acked + run.redispatched);
    EXPECT_EQ(run.workers.protocolErrors.load(), 0);
    EXPECT_EQ(run.decreases, 0);
}

/*
 * A hostile thread writes garbage to the registration socket (some of
 * it with descriptors attached) while workers register and serve: each
 * datagram is rejected and counted, and nothing else is disturbed.
 */
TEST(DispatcherStress, GarbageOnTheRegistrationSocket)
{
    RunTally run;
    constexpr int kGarbage = 300;
    std::atomic<int> sent{0};
    auto hostile = [&sent](const Server &s) {
	for (int i = 0; i < kGarbage; i++) {
	    Message msg = Message::Make(MsgType::Register);
	    UniqueFd a, b;
	    int passFd = -1;
	    switch (i % 4) {
	    case 0:			/* Wrong magic. */
		msg.header.magic = 0x12345678;
		break;
	    case 1:			/* REGISTER without a descriptor. */
		break;
	    case 2:			/* A type the dispatcher never takes. */
		msg.header.type = MsgType::Conn;
		MakeStreamPair(a, b);
		passFd = a.Get();
		break;
	    case 3:			/* REGISTER with text. */
		msg.SetText("garbage");
		MakeStreamPair(a, b);
		passFd = a.Get();
		break;
	    }
	    if (SendMessageWaiting(s.RegistrationFd(), msg.Data(), msg.Size(),
		    PassFd{passFd, ProcessId()}, kTimeoutSeconds * 1000) == 0) {
		sent++;
	    }
	}
    };
    Drive(OpenServer(), 6, 4, 200, [] { return Fate::Serve; }, run, hostile);
    EXPECT_EQ(sent.load(), kGarbage);
    EXPECT_EQ(run.rejected, static_cast<uint64_t>(kGarbage));
    EXPECT_EQ(run.clients.answered.load(), 800);
    EXPECT_EQ(run.accepted, 800u);
    EXPECT_EQ(run.acked, 800u);
    EXPECT_EQ(run.workers.registrations.load(), 6);
}

/*
 * Servers opened and destroyed from several threads at once, each
 * destroyed while its dispatcher holds a connection that a worker has
 * been sent but not acknowledged: the destructor joins the dispatcher,
 * the client sees end-of-file, nothing hangs.
 */
TEST(DispatcherStress, ServersClosedWithConnectionsInFlight)
{
    std::atomic<int> eofs{0}, rounds{0};
    auto churn = [&] {
	for (int i = 0; i < 15; i++) {
	    std::unique_ptr<Server> server = OpenServer();
	    if (!server) {
		return;
	    }
	    UniqueFd chan;
	    ASSERT_EQ(Register(*server, chan), 0);
	    ASSERT_EQ(Send(chan.Get(), MsgType::Ready), 0);
	    UniqueFd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	    SetTimeout(client.Get());
	    sockaddr_in addr{};
	    addr.sin_family = AF_INET;
	    addr.sin_port = htons(static_cast<uint16_t>(server->Port()));
	    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	    ASSERT_EQ(connect(client.Get(),
		    reinterpret_cast<sockaddr *>(&addr), sizeof(addr)), 0);
	    const Counters &c = server->Stats();
	    ASSERT_TRUE(WaitFor([&] { return c.dispatched.load() == 1; }));
	    chan.Reset();		/* The worker dies before ACK... */
	    server.reset();		/* ...and the server closes. */
	    char byte;
	    if (read(client.Get(), &byte, 1) == 0) {
		eofs++;
	    }
	    rounds++;
	}
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; i++) {
	threads.emplace_back(churn);
    }
    for (std::thread &t : threads) {
	t.join();
    }
    EXPECT_EQ(rounds.load(), 45);
    EXPECT_EQ(eofs.load(), 45);
}

#endif /* SS_STRESS_TEST */

/*
 * floor.c --
 *
 *	The benchmark's floor: the least a descriptor hand-off can cost. One
 *	process accepts on 127.0.0.1 and passes each connection (SCM_RIGHTS
 *	over a private AF_UNIX socketpair) to one of WORKERS forked
 *	processes in turn, then closes its copy. No readiness, no
 *	acknowledgement, no Tcl: each worker reads the request head, writes
 *	the same 6-byte HTTP/1.0 answer as the Tcl peers, and closes. Built
 *	by bench/bench.tcl with the system's C compiler, outside the tree.
 *
 *	    floor WORKERS	prints "READY port" once it listens; exits
 *				on SIGTERM or when its parent exits, and
 *				its workers follow.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

static const char response[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
	"Content-Length: 6\r\n\r\nhello\n";

/* Receives one descriptor from link; returns it, or -1 at end-of-file. */
static int
ReceiveDescriptor(int link)
{
    char byte;
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { &byte, 1 };
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    if (recvmsg(link, &msg, MSG_CMSG_CLOEXEC) <= 0) {
	return -1;
    }
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c == NULL || c->cmsg_type != SCM_RIGHTS) {
	return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(fd));
    return fd;
}

/* Sends fd over link; returns 0, or -1 with errno set. */
static int
SendDescriptor(int link, int fd)
{
    char byte = 'c';
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { &byte, 1 };
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(fd));
    return sendmsg(link, &msg, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/* A worker: serve every connection that arrives on link; never returns. */
static void
Serve(int link)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    for (;;) {
	int conn = ReceiveDescriptor(link);
	if (conn < 0) {
	    _exit(0);
	}
	/* Read until the blank line that ends an HTTP/1.0 request head. */
	char buf[4096];
	size_t have = 0;
	while (have < sizeof(buf) - 1) {
	    ssize_t n = read(conn, buf + have, sizeof(buf) - 1 - have);
	    if (n <= 0) {
		break;
	    }
	    have += (size_t)n;
	    buf[have] = '\0';
	    if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n")) {
		ssize_t w = write(conn, response, sizeof(response) - 1);
		(void)w;
		break;
	    }
	}
	close(conn);
    }
}

int
main(int argc, char **argv)
{
    int workers = argc > 1 ? atoi(argv[1]) : 0;
    if (workers < 1) {
	fprintf(stderr, "usage: floor WORKERS\n");
	return 2;
    }
    int links[workers];
    for (int w = 0; w < workers; w++) {
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
	    perror("socketpair");
	    return 1;
	}
	pid_t pid = fork();
	if (pid < 0) {
	    perror("fork");
	    return 1;
	}
	if (pid == 0) {
	    close(pair[0]);
	    for (int i = 0; i < w; i++) {
		close(links[i]);
	    }
	    Serve(pair[1]);
	}
	close(pair[1]);
	links[w] = pair[0];
    }

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = { 0 };
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, len) < 0
	    || listen(listener, 4096) < 0
	    || getsockname(listener, (struct sockaddr *)&addr, &len) < 0) {
	perror("listen");
	return 1;
    }
    printf("READY %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    /* Accept and hand off until SIGTERM (or the driver's exit). */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int next = 0;
    for (;;) {
	int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0) {
	    continue;
	}
	SendDescriptor(links[next], conn);
	next = (next + 1) % workers;
	close(conn);
    }
}

/*
 * ssWinTcl.cpp --
 *
 *	The Windows side of the Tcl glue that differs by platform. Tcl on
 *	Windows has no file handlers, so SocketWatch wraps a duplicate of the
 *	socket in a Tcl TCP channel and listens for its readable events. The
 *	channel is never read: Tcl's Windows socket driver checks with
 *	select() that data is really there before each event, so reading the
 *	socket directly (ReceiveMessage) is what turns the events off.
 */

#include "ssTclUtil.h"

namespace socketserver {

namespace {

void
ChannelReadable(ClientData clientData, int mask)
{
    auto watch = static_cast<SocketWatch *>(clientData);
    watch->Fire(mask);
}

} // namespace

int
SocketWatch::Start(int fd, Tcl_FileProc *proc, ClientData clientData)
{
    Stop();
    UniqueFd copy;
    int err = DuplicateFd(fd, copy);
    if (err) {
	return err;
    }
    chan_ = Tcl_MakeTcpClientChannel(
	    reinterpret_cast<ClientData>(static_cast<intptr_t>(copy.Get())));
    if (!chan_) {
	return ENOMEM;
    }
    copy.Release();			/* The channel's now. */
    Tcl_RegisterChannel(nullptr, chan_);
    fd_ = fd;
    proc_ = proc;
    clientData_ = clientData;
    Tcl_CreateChannelHandler(chan_, TCL_READABLE, ChannelReadable, this);
    return 0;
}

void
SocketWatch::Fire(int mask)
{
    proc_(clientData_, mask);		/* May Stop this watch. */
}

void
SocketWatch::Stop()
{
    if (chan_) {
	Tcl_DeleteChannelHandler(chan_, ChannelReadable, this);
	Tcl_UnregisterChannel(nullptr, chan_);	/* Closes the copy. */
	chan_ = nullptr;
    }
    fd_ = -1;
}

} // namespace socketserver

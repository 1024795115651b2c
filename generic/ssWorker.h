/*
 * ssWorker.h --
 *
 *	The worker side: an interp that has called `client`. Each interp has,
 *	per server, a private channel to that server's dispatcher, a handler,
 *	and whether it is armed. All of it lives in the interp's AssocData and
 *	is used only from the interp's thread, from its event loop.
 */

#ifndef SS_WORKER_H
#define SS_WORKER_H

#include <tcl.h>

#include <cstdint>
#include <optional>

namespace socketserver {

/*
 * Arms interp as a worker of the server on port (default: the process's
 * first server) with handler. Returns a Tcl result; on error the message
 * and errorCode are in interp.
 */
int ArmWorker(Tcl_Interp *interp, std::optional<int> port, Tcl_Obj *handler);

/* Forgets interp's link to a server this process just closed. */
void ForgetWorkerLink(Tcl_Interp *interp, uint64_t serverId);

} // namespace socketserver

#endif /* SS_WORKER_H */

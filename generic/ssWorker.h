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

#include "ssRegistry.h"

#include <tcl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace socketserver {

/*
 * Which server a worker works for: one opened by this process or the one
 * it was forked from (by port; none: the first), or one that listens on a
 * control socket at path (a server this process was not forked from).
 */
struct WorkerTarget {
    ServerName server;			/* -port: a port or a Unix path. */
    std::string path;
    std::vector<int> serverUids;	/* Trusted at path; empty: our own. */
};

/*
 * Arms interp as a worker of target with handler: one-shot, or with
 * concurrency, persistent with that limit (0: take no more). Returns a
 * Tcl result; on error the message and errorCode are in interp.
 */
int ArmWorker(Tcl_Interp *interp, const WorkerTarget &target,
	Tcl_Obj *handler, std::optional<int> concurrency = std::nullopt);

/* Forgets interp's link to a server this process just closed. */
void ForgetWorkerLink(Tcl_Interp *interp, uint64_t serverId);

} // namespace socketserver

#endif /* SS_WORKER_H */

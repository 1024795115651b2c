/*
 * ssSwigLayer.h --
 *
 *	The functions behind socketserver.i: passing any channel between
 *	processes. Each returns a new Tcl_Obj, or NULL with an error in
 *	interp.
 */

#ifndef SS_SWIG_LAYER_H
#define SS_SWIG_LAYER_H

#include <tcl.h>

typedef Tcl_Obj SsResultObj;

int SsCheckArgCount(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[],
	const char *format, ...);
int SsChannelToFd(Tcl_Interp *interp, Tcl_Obj *name, int *fdPtr);
SsResultObj *SsSocketpair(Tcl_Interp *interp);
SsResultObj *SsSendFd(Tcl_Interp *interp, int sock, int fd,
	const char *data = "");
SsResultObj *SsRecvFd(Tcl_Interp *interp, int sock);
const char *SsVersion(void);

#endif /* SS_SWIG_LAYER_H */

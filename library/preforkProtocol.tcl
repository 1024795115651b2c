# preforkProtocol.tcl --
#
#	How a pool's supervisor and its workers talk: the line protocol
#	on their pipes, and the escaping of its text.
#
#	Spawn mode. The supervisor starts `tclsh` with a pipe on its stdin
#	and stdout (open |... r+), writes the bootstrap (its variable in
#	prefork.tcl), which tclsh reads and evaluates as its first command,
#	then one line: the worker's configuration (the package's directory
#	and auto_path, the version, the control socket's path, -handler,
#	-init, -maxrequests, the tunables, argv0 and argv). The bootstrap
#	loads the package and calls SpawnedWorker, which runs the same worker
#	code as a fork: the status lines below go to the worker's stdout, the
#	control lines come on its stdin. Anything else the worker writes to
#	stdout goes to its stderr, which is the supervisor's. A worker is
#	reaped by closing its channel (blocking: the close returns the exit
#	status), once its stdout has reached end of file and, on Linux,
#	/proc says it is a zombie; killed with `kill -KILL` (Unix) or
#	`taskkill /F` (Windows).
#
#	Supervisor and worker talk through two pipes per worker (spawn mode:
#	the worker's stdout and stdin):
#	  - status, worker to supervisor, one line per event:
#		ready		-init ran, the worker is armed for the first time
#		busy		a connection was handed over, the handler runs
#		done N		the handler returned; N connections so far
#		hold K T N	-concurrency: K channels open, the oldest since
#				T (clock milliseconds; 0 when K is 0), N closed
#				so far
#		retiring WHY ?N?  it takes no more connections and will exit
#				(-concurrency: after taking N)
#		log LEVEL TEXT	a log line, passed to the pool's -log
#	    Its end of file tells the supervisor at once that a worker died;
#	    a periodic `wait -nohang` on every worker pid is the backstop
#	    (spawn mode: a look at /proc/PID/stat, on Linux).
#	  - control, supervisor to worker:
#		retire	finish the connection in hand, take no more, exit.
#			Only sent while the server still listens, so a
#			connection already on its way to the worker is re-sent
#			to another worker by the dispatcher when it exits.
#		drain	the listener has been closed: finish the connection in
#			hand and whatever the dispatcher had already queued to
#			this worker, and exit when the server's channel closes.
#	    Its end of file means the supervisor is gone: the worker retires.
#	SIGKILL ends a worker at once (hard stop, -timeout).
#	Both ends read and write these lines in utf-8, with lf line ends.

namespace eval ::socketserver::prefork {

# Encode, Decode --
#	A log message on one line of the status pipe.

proc Encode {text} {
    string map {\\ \\\\ \n \\n \r \\r} $text
}

proc Decode {text} {
    subst -nocommands -novariables $text
}

# EncodeLine --
#	Any value on one line of plain ASCII (Decode reads it back): what a
#	spawned worker reads before it has set its channel's encoding.

proc EncodeLine {text} {
    set text [Encode $text]
    if {![regexp {[^\t\x20-\x7e]} $text]} {
	return $text
    }
    set out ""
    foreach c [split $text ""] {
	scan $c %c code
	if {($code < 0x20 && $c ne "\t") || $code > 0x7e} {
	    append out [format \\u%04x $code]
	} else {
	    append out $c
	}
    }
    return $out
}

}

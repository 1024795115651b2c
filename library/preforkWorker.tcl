# preforkWorker.tcl --
#
#	The worker side of a pool: runs in each forked child or spawned
#	tclsh, never in the supervisor.
#
#	When a request is finished: one-shot (the default), when the handler
#	returns. A handler that keeps the channel open and answers later
#	from fileevents is counted then (for -maxrequests and `info served`),
#	and the worker takes its next connection at once; -timeout measures
#	only the time spent inside the handler. With -concurrency N (for
#	such event-driven handlers) the worker arms once with `client
#	-concurrency N` and holds up to N connections; each counts until its
#	channel is closed (::socketserver::onclose): `info served` counts
#	closed ones, -maxrequests N stops the worker taking more after N
#	(`client -concurrency 0`) and retires it once they are all closed,
#	and -timeout kills a worker whose oldest open connection is older.
#	A worker that is asked to exit still waits until every channel it
#	handed to the handler is closed (the supervisor's stop -timeout
#	bounds that wait).

namespace eval ::socketserver::prefork {

# BecomeWorker --
#	Turns a freshly forked child into a worker: forgets the parent's
#	pools, empties the event loop (timers and fileevents inherited from
#	the pool's process are not the worker's; the channels stay open),
#	sets the worker's signals, and runs it (RunWorker). Never returns.

proc BecomeWorker {statusPipe controlPipe config} {
    variable pools
    variable signalPools
    variable savedSignals
    variable supervisorSignals

    foreach pool $pools {
	catch {[info object namespace $pool]::my Forget}
    }
    set pools {}
    set signalPools {}
    set savedSignals {}
    foreach id [after info] {
	after cancel $id
    }
    foreach chan [chan names] {
	catch {chan event $chan readable {}}
	catch {chan event $chan writable {}}
    }
    signal ignore $supervisorSignals
    signal unblock $supervisorSignals
    RunWorker $statusPipe $controlPipe $config
}

# SpawnedWorker --
#	Called by the bootstrap of a spawned tclsh, once the package is
#	loaded: takes the supervisor's tunables, argv0 and argv, ignores the
#	pool's signals when the supervisor takes them (Tclx), and runs the
#	worker with its stdout as the status pipe and its stdin as the
#	control pipe. Never returns.

proc SpawnedWorker {config} {
    variable supervisorSignals
    foreach var {graceMs drainFallbackMs} {
	variable $var [dict get $config $var]
    }
    set ::argv0 [dict get $config argv0]
    set ::argv [dict get $config argv]
    set ::argc [llength $::argv]
    if {[dict get $config signals] && ![catch {package require Tclx}]} {
	signal ignore $supervisorSignals
	signal unblock $supervisorSignals
    }
    RunWorker stdout stdin $config
}

# RunWorker --
#	The worker proper: runs -init, arms, and serves until asked to go.
#	Never returns. When spawned, the status pipe is stdout: StdoutGuard
#	sends whatever else is written to it to stderr.

proc RunWorker {statusPipe controlPipe config} {
    variable W
    variable stopping 0
    variable served 0

    array unset W
    array set W {
	armed 0 inHandler 0 finishing 0 drain 0 orphan 0 open {} raw 0
	held {} taken 0
    }
    set W(pipe) $statusPipe
    set W(control) $controlPipe
    dict with config {
	set W(target) $target
	set W(handler) $handler
	set W(max) $maxrequests
	set W(conc) $concurrency
	set W(log) $log
	set W(guard) $spawned
    }
    chan configure $statusPipe -blocking 1 -buffering line -translation lf \
	    -encoding utf-8
    chan configure $controlPipe -blocking 0 -translation lf -encoding utf-8
    if {$W(guard)} {
	chan push $statusPipe ::socketserver::prefork::StdoutGuard
    }
    chan event $controlPipe readable ::socketserver::prefork::WorkerControl
    interp bgerror {} [list ::socketserver::prefork::WorkerBgerror \
	    [interp bgerror {}]]

    if {[catch {uplevel #0 [dict get $config init]} msg opts]} {
	WorkerLog error "-init failed: [dict get $opts -errorinfo]"
	::exit 3
    }
    set cmd [lindex $W(handler) 0]
    if {[uplevel #0 [list namespace which -command $cmd]] eq ""} {
	WorkerLog error "-handler: invalid command name \"$cmd\""
	::exit 4
    }
    if {$W(guard) && [llength $W(log)] && [uplevel #0 [list \
	    namespace which -command [lindex $W(log) 0]]] eq ""} {
	set W(log) ""	;# Not defined by -init: DefaultLog.
    }
    WorkerControl		;# Asked to go during -init: exits here.
    if {![Arm]} {
	::exit 4
    }
    Report ready
    vwait ::socketserver::prefork::W(forever)
    ::exit 0
}

# StdoutGuard --
#	Spawn mode: a channel transform on stdout, the status pipe. Report
#	writes through it (W(raw) set); anything else written to stdout, by
#	-init or a handler, goes to stderr instead of confusing the
#	supervisor.

proc StdoutGuard {cmd chan args} {
    variable W
    switch -- $cmd {
	initialize {
	    return {initialize finalize write}
	}
	write {
	    set data [lindex $args 0]
	    if {[info exists W(raw)] && $W(raw)} {
		return $data
	    }
	    catch {
		puts -nonewline stderr [encoding convertfrom utf-8 $data]
		flush stderr
	    }
	    return ""
	}
    }
}

# Serve --
#	The handler the worker arms with: calls the user's handler at global
#	level, counts the connection when it returns, and re-arms (or
#	retires when -maxrequests is reached or a stop was asked).

proc Serve {chan addr port} {
    variable W
    if {$W(conc) > 0} {
	tailcall ServeHeld $chan $addr $port
    }
    variable served
    variable stopping
    set W(armed) 0
    set W(inHandler) 1
    Report busy
    set code [catch {uplevel #0 [list {*}$W(handler) $chan $addr $port]} \
	    msg opts]
    set W(inHandler) 0
    if {$code == 1} {
	WorkerLog error "-handler failed: [dict get $opts -errorinfo]"
	if {$chan in [chan names]} {
	    catch {close $chan}
	}
    }
    incr served
    if {$chan in [chan names]} {
	lappend W(open) $chan
    }
    Report "done $served"
    if {$W(finishing)} {
	return
    }
    if {$stopping} {
	Finish [expr {$W(drain) ? "stop" : "retire"}]
    } elseif {$W(max) > 0 && $served >= $W(max)} {
	Finish maxrequests
    } elseif {![Arm]} {
	Finish "lost the server"
    }
}

# ServeHeld, Closed, ReportHeld --
#	-concurrency: the worker stays armed. Each connection is counted
#	from the hand-off until its channel closes, wherever it closes
#	(W(held): channel -> when it was handed over); after -maxrequests
#	of them the worker takes no more and retires once all are closed.

proc ServeHeld {chan addr port} {
    variable W
    variable stopping
    dict set W(held) $chan [clock milliseconds]
    incr W(taken)
    ::socketserver::onclose $chan [list ::socketserver::prefork::Closed $chan]
    ReportHeld
    set W(inHandler) 1
    set code [catch {uplevel #0 [list {*}$W(handler) $chan $addr $port]} \
	    msg opts]
    set W(inHandler) 0
    if {$code == 1} {
	WorkerLog error "-handler failed: [dict get $opts -errorinfo]"
	catch {close $chan}
    }
    if {$W(finishing)} {
	return
    }
    if {$stopping} {
	Finish [expr {$W(drain) ? "stop" : "retire"}]
    } elseif {$W(max) > 0 && $W(taken) >= $W(max)} {
	Finish maxrequests
    }
}

proc Closed {chan} {
    variable W
    variable served
    dict unset W(held) $chan
    incr served
    ReportHeld
}

proc ReportHeld {} {
    variable W
    variable served
    set since 0
    if {[dict size $W(held)]} {
	set since [tcl::mathfunc::min {*}[dict values $W(held)]]
    }
    Report [list hold [dict size $W(held)] $since $served]
}

proc Arm {} {
    variable W
    variable stopping
    set limit [expr {$W(conc) > 0 ? [list -concurrency $W(conc)] : {}}]
    if {[catch {::socketserver::socket client {*}$W(target) {*}$limit \
	    ::socketserver::prefork::Serve} msg]} {
	if {!$stopping} {
	    WorkerLog error "can't take connections: $msg"
	}
	return 0
    }
    set W(armed) 1
    return 1
}

# WorkerControl, WorkerStop --
#	Lines from the supervisor ("retire", "drain"); end of file means it
#	is gone. Acted on from the event loop, never inside a handler.

proc WorkerControl {} {
    variable W
    while {![catch {gets $W(control) line} n] && $n >= 0} {
	if {$line in {retire drain}} {
	    WorkerStop $line
	}
    }
    if {[catch {eof $W(control)} eof] || $eof} {
	catch {close $W(control)}
	set W(orphan) 1
	WorkerStop orphan
    }
}

proc WorkerStop {how} {
    variable W
    variable stopping
    set stopping 1
    if {$how eq "drain"} {
	set W(drain) 1
    }
    if {$W(inHandler) || $W(finishing)} {
	return			;# Serve, or Finish, takes it from here.
    }
    if {!$W(armed)} {
	Finish [expr {$W(drain) ? "stop" : "retire"}]
    } elseif {$W(drain)} {
	# The listener is closed: what the dispatcher had sent comes
	# first, then end of file (SOCKETSERVER LOST, in WorkerBgerror).
	after $::socketserver::prefork::drainFallbackMs \
		::socketserver::prefork::LeaveIdle
    } else {
	# Let a connection already on its way arrive; had it not, the
	# dispatcher re-sends it to another worker when this one exits.
	after $::socketserver::prefork::graceMs \
		::socketserver::prefork::LeaveIdle
    }
}

proc LeaveIdle {} {
    variable W
    if {!$W(inHandler) && !$W(finishing)} {
	Finish [expr {$W(drain) ? "stop" : "retire"}]
    }
}

# WorkerBgerror --
#	The worker's background error handler. The server's channel closing
#	under an armed worker (SOCKETSERVER LOST) ends the worker quietly;
#	anything else goes to the previous handler, or to the log.

proc WorkerBgerror {previous msg opts} {
    variable W
    if {[lrange [dict get $opts -errorcode] 0 1] eq {SOCKETSERVER LOST}} {
	set W(armed) 0
	if {!$W(inHandler)} {
	    Finish [expr {$W(drain) ? "stop" : "lost the server"}]
	}
	return
    }
    if {$previous eq "::tcl::Bgerror" && ![llength [info commands ::bgerror]]} {
	WorkerLog error "background error: [dict get $opts -errorinfo]"
    } else {
	uplevel #0 [list {*}$previous $msg $opts]
    }
}

# Finish --
#	The worker takes no more connections: it says so, waits until the
#	channels its handler kept open are closed, and exits.

proc Finish {why} {
    variable W
    variable stopping
    if {$W(finishing)} {
	return
    }
    set W(finishing) 1
    set stopping 1
    if {$W(conc) > 0 && $W(armed)} {
	# Take no more; what is already on its way is still served.
	catch {::socketserver::socket client {*}$W(target) -concurrency 0 \
		::socketserver::prefork::Serve}
    }
    Report [list retiring $why {*}[expr {$W(conc) > 0 ? $W(taken) : {}}]]
    WaitAndExit
}

proc WaitAndExit {} {
    variable W
    set open {}
    foreach chan $W(open) {
	if {$chan in [chan names]} {
	    lappend open $chan
	}
    }
    set W(open) $open
    if {![llength $open] && ![dict size $W(held)] && !$W(inHandler)} {
	::exit 0
    }
    after 20 ::socketserver::prefork::WaitAndExit
}

# Report, WorkerLog --
#	One line to the supervisor. When it is gone (the pipe is broken) the
#	worker finishes what it holds and exits; logs then go to -log here.

proc Report {line} {
    variable W
    if {$W(pipe) eq ""} {
	return 0
    }
    if {$W(guard)} {
	catch {flush $W(pipe)}	;# What the user wrote: to stderr.
	set W(raw) 1
    }
    set failed [catch {
	puts $W(pipe) $line
	flush $W(pipe)
    }]
    set W(raw) 0
    if {$failed} {
	if {!$W(guard)} {
	    catch {close $W(pipe)}	;# Never close stdout: see StdoutGuard.
	}
	set W(pipe) ""
	after 0 {::socketserver::prefork::WorkerStop orphan}
	return 0
    }
    return 1
}

proc WorkerLog {level message} {
    variable W
    if {![Report [list log $level [Encode $message]]]} {
	Log $W(log) $level $message
    }
}

}

# server.tcl --
#
#	One benchmark peer: a Tcl server answering a tiny HTTP/1.0 "hello" on
#	127.0.0.1, one request per connection. Started by bench/bench.tcl as
#
#	    tclsh server.tcl KIND WORKERS HANDLER RUNDIR CPULOOPS ?PORT LIBRARY?
#
#	KIND	socketserver	one listener and dispatcher here, WORKERS
#				processes forked with Tclx, each armed with
#				`::socketserver::socket client`
#		plain		Tcl's own `socket -server`, this one process
#		forkaccept	`socket -server` here, then WORKERS processes
#				forked with Tclx, each accepting on the
#				inherited listening socket
#		reuseport	WORKERS processes forked with Tclx, each with
#				its own `::socketserver::socket server
#				-reuseport 1` on the same port, serving itself
#		ss11		socketservertcl 1.1, loaded from LIBRARY, bound
#				to PORT, WORKERS processes forked with Tclx
#	HANDLER	trivial		answer at once
#		blocking	a synchronous `after 5` first
#		cpu		a Tcl loop of CPULOOPS iterations first (~1 ms)
#		fileevent	answer at once, but read the request from a
#				readable fileevent on a non-blocking channel,
#				and arm again only when the answer is written
#				(the 1.1 paper's pattern)
#
#	Prints "READY port" on stdout once every worker can take a
#	connection. Reads commands on stdin: "count" makes every serving
#	process write the number of connections it has served to
#	RUNDIR/count.PID (through a private control pipe to each worker: no
#	signals, which a threaded Tcl cannot take safely at any moment).
#	The process exits when its stdin reaches end-of-file (the driver
#	closed it or died); a worker exits when its control pipe does, which
#	is when this process exits, however it exits. Nothing outlives the
#	driver.

package require Tclx

lassign $argv kind nworkers handlerKind rundir cpuLoops ss11Port ss11Library

set response "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length:\
	6\r\n\r\nhello\n"
set served 0
set failed 0

switch -- $handlerKind {
    trivial - fileevent {
	proc work {} {}
    }
    blocking {
	proc work {} {after 5}
    }
    cpu {
	proc work {} [format {
	    for {set i 0} {$i < %d} {incr i} {}
	} $cpuLoops]
    }
    default {
	error "unknown handler \"$handlerKind\""
    }
}

# serve --
#	The handler all Tcl peers share: read the request head (blocking, as
#	a simple prefork handler would), then answer.
proc serve {chan addr port} {
    set read [expr {![catch {
	fconfigure $chan -translation {auto lf} -buffering full
	while {[gets $chan line] > 0} {}
    }]}]
    answer $chan $read
}

# answer --
#	Once the request head is read (read: it could be): do the handler's
#	work, answer, close. A client that went away is counted, not raised.
proc answer {chan read} {
    if {!$read || [catch {
	work
	puts -nonewline $chan $::response
	close $chan
    }]} {
	catch {close $chan}
	incr ::failed
    }
    incr ::served
}

# serveEvent --
#	The event-driven handler: read the request head from readable
#	fileevents on a non-blocking channel, then answer, then evaluate
#	done (arming again, for socketserver).
proc serveEvent {done chan addr port} {
    fconfigure $chan -blocking 0 -translation {auto lf} -buffering full
    fileevent $chan readable [list readHead $chan $done]
}

# readHead --
#	serveEvent's readable handler: consume whole lines; at the blank line
#	that ends the head, answer; at end-of-file, count a failure.
proc readHead {chan done} {
    while {[set n [gets $chan line]] > 0} {}
    if {$n < 0 && ![eof $chan]} {
	return		;# the rest of the head has not arrived yet
    }
    answer $chan [expr {$n >= 0}]
    uplevel #0 $done
}

# arm --
#	A socketserver or 1.1 worker's arming for its next connection, with
#	the handler style the run asks for.
proc arm {} {
    if {$::handlerKind eq "fileevent"} {
	::socketserver::socket client -port $::port {serveEvent arm}
    } else {
	::socketserver::socket client -port $::port ssServe
    }
}

# ssServe --
#	The blocking socketserver handler: serve, then arm for the next
#	connection.
proc ssServe {chan addr port} {
    serve $chan $addr $port
    arm
}

# tclHandler --
#	The handler the plain and forkaccept peers give `socket -server`.
proc tclHandler {} {
    expr {$::handlerKind eq "fileevent" ? {serveEvent {}} : "serve"}
}

# reportCount --
#	Write this process's count where the driver looks for it.
proc reportCount {} {
    set file [file join $::rundir count.[pid]]
    set f [open $file.tmp w]
    puts $f "$::served $::failed"
    close $f
    file rename -force $file.tmp $file
}

# control --
#	A line on a control channel (stdin in this process, the control pipe
#	in a worker): "count" reports; end-of-file ends the process.
proc control {chan} {
    if {[gets $chan line] < 0} {
	if {[eof $chan]} {
	    exit 0
	}
	return
    }
    switch -- $line {
	count {
	    if {$::serving} {
		reportCount
	    }
	    foreach ctl $::controls {
		puts $ctl count
		flush $ctl
	    }
	}
    }
}

# forkWorker --
#	Forks one worker that evaluates script and then serves until its
#	control pipe closes. Returns the child's pid in the parent.
proc forkWorker {script} {
    lassign [chan pipe] ctlRead ctlWrite
    flush stdout
    flush stderr
    set pid [fork]
    if {$pid == 0} {
	if {[catch {
	    # Only the parent may hold a write end: then each worker's pipe
	    # reaches end-of-file exactly when the parent exits.
	    foreach ctl [list $ctlWrite {*}$::controls] {
		close $ctl
	    }
	    set ::controls {}
	    set ::serving 1
	    set ::served 0
	    fileevent stdin readable {}
	    fileevent $ctlRead readable [list control $ctlRead]
	    uplevel #0 $script
	} msg]} {
	    catch {
		puts $::readyWrite [list error [pid] $msg]
		flush $::readyWrite
	    }
	    exit 1
	}
	vwait ::forever
	exit 0
    }
    close $ctlRead
    fconfigure $ctlWrite -buffering line
    lappend ::controls $ctlWrite
    return $pid
}

# tellReady --
#	In a worker: tell the parent it can take connections.
proc tellReady {{extra ""}} {
    puts $::readyWrite "[pid] $extra"
    flush $::readyWrite
}

# Workers report on readyWrite once armed; the parent holds a control
# pipe to each.
set controls {}
set serving 0
lassign [chan pipe] readyRead readyWrite
fconfigure $readyWrite -buffering line

interp bgerror {} {apply {{msg opts} {
    # A worker armed when its server exits at the end of a run is told so;
    # that is the run ending, not an error.
    if {[lrange [dict get $opts -errorcode] 0 1] ne {SOCKETSERVER LOST}} {
	puts stderr "[pid]: $msg"
    }
}}}

switch -- $kind {
    socketserver {
	package require socketserver 2
	set port [::socketserver::socket server -myaddr 127.0.0.1 0]
	for {set w 0} {$w < $nworkers} {incr w} {
	    forkWorker {
		arm
		tellReady
	    }
	}
    }
    ss11 {
	load $ss11Library
	set port $ss11Port
	::socketserver::socket server $port
	for {set w 0} {$w < $nworkers} {incr w} {
	    forkWorker {
		arm
		tellReady
	    }
	}
	# 1.1 binds in a thread of its own: wait until it listens (each probe
	# reaches a worker, which counts it as a failed request).
	set deadline [expr {[clock milliseconds] + 10000}]
	while {[catch {socket 127.0.0.1 $port} probe]} {
	    if {[clock milliseconds] > $deadline} {
		puts stderr "socketservertcl 1.1 does not listen on $port"
		exit 1
	    }
	    after 10
	}
	close $probe
    }
    plain {
	set listener [socket -server [tclHandler] -myaddr 127.0.0.1 0]
	set port [lindex [fconfigure $listener -sockname] 2]
	set nworkers 0
	set serving 1
    }
    forkaccept {
	set listener [socket -server [tclHandler] -myaddr 127.0.0.1 0]
	set port [lindex [fconfigure $listener -sockname] 2]
	for {set w 0} {$w < $nworkers} {incr w} {
	    forkWorker tellReady
	}
	# The parent takes no connections: only the workers accept.
	close $listener
    }
    reuseport {
	package require socketserver 2
	set port 0
	for {set w 0} {$w < $nworkers} {incr w} {
	    forkWorker {
		set ::port [::socketserver::socket server -reuseport 1 \
			-myaddr 127.0.0.1 $::port]
		arm
		tellReady $::port
	    }
	    if {$w == 0} {
		# The first worker picked the port; the rest bind the same.
		set line [gets $readyRead]
		if {[lindex $line 0] eq "error"} {
		    puts stderr "worker [lindex $line 1]: [lindex $line 2]"
		    exit 1
		}
		set port [lindex $line 1]
	    }
	}
    }
    default {
	error "unknown kind \"$kind\""
    }
}

# Wait for every worker's "ready" (the first reuseport worker's was read).
set waiting $nworkers
if {$kind eq "reuseport"} {
    incr waiting -1
}
while {$waiting > 0} {
    if {[gets $readyRead line] < 0} {
	puts stderr "a worker died before it was ready"
	exit 1
    }
    if {[lindex $line 0] eq "error"} {
	puts stderr "worker [lindex $line 1]: [lindex $line 2]"
	exit 1
    }
    incr waiting -1
}
close $readyRead
close $readyWrite

puts "READY $port"
flush stdout
fileevent stdin readable {control stdin}
vwait forever

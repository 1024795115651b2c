# server.tcl --
#
#	One benchmark peer: a Tcl server answering a tiny HTTP/1.0 "hello" on
#	127.0.0.1, one request per connection. Started by bench/bench.tcl as
#
#	    tclsh server.tcl KIND WORKERS HANDLER RUNDIR CPULOOPS
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
#	HANDLER	trivial		answer at once
#		blocking	a synchronous `after 5` first
#		cpu		a Tcl loop of CPULOOPS iterations first (~1 ms)
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

lassign $argv kind nworkers handlerKind rundir cpuLoops

set response "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length:\
	6\r\n\r\nhello\n"
set served 0
set failed 0

switch -- $handlerKind {
    trivial {
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
#	a simple prefork handler would), do the handler's work, answer,
#	close. A client that went away is counted, not raised.
proc serve {chan addr port} {
    if {[catch {
	fconfigure $chan -translation {auto lf} -buffering full
	while {[gets $chan line] > 0} {}
	work
	puts -nonewline $chan $::response
	close $chan
    }]} {
	catch {close $chan}
	incr ::failed
    }
    incr ::served
}

# ssServe --
#	The socketserver handler: serve, then arm for the next connection.
proc ssServe {chan addr port} {
    serve $chan $addr $port
    ::socketserver::socket client -port $::port ssServe
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
		::socketserver::socket client -port $::port ssServe
		tellReady
	    }
	}
    }
    plain {
	set listener [socket -server serve -myaddr 127.0.0.1 0]
	set port [lindex [fconfigure $listener -sockname] 2]
	set nworkers 0
	set serving 1
    }
    forkaccept {
	set listener [socket -server serve -myaddr 127.0.0.1 0]
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
		::socketserver::socket client -port $::port ssServe
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

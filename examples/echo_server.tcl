# echo_server.tcl --
#
#	A prefork echo server written exactly as for socketservertcl 1.1:
#	the parent listens, forks its workers with Tclx, and each worker takes
#	one connection at a time and asks for the next when it is done.
#
#	    tclsh echo_server.tcl ?port? ?workers?
#
#	port defaults to 8888 (0 picks a free one), workers to 4. The first
#	line on stdout is "listening on port N". Every client's first line is
#	echoed back as "PID: line", PID being the worker's. SIGTERM or SIGINT
#	stops the workers, then the server.

package require socketserver
package require Tclx

set port [expr {$argc > 0 ? [lindex $argv 0] : 8888}]
set nworkers [expr {$argc > 1 ? [lindex $argv 1] : 4}]

# In a worker: a connection has been handed over. Read its line when it
# comes, without blocking the worker meanwhile.
proc handle_accept {fd ipaddr port} {
    fconfigure $fd -buffering line -blocking 0
    fileevent $fd readable [list handle_readable $fd]
}

proc handle_readable {fd} {
    if {[gets $fd line] < 0 && ![eof $fd]} {
	return			;# Only part of a line so far.
    }
    catch {puts $fd "[pid]: $line"}
    close $fd
    # Done with this one: ready for another.
    next_connection
}

proc next_connection {} {
    if {$::short_form} {
	::socketserver::socket client handle_accept
    } else {
	::socketserver::socket client -port $::port handle_accept
    }
}

# In a worker whose server has gone away: nothing more will come.
proc worker_error {msg options} {
    puts stderr "worker [pid]: $msg"
    if {[lindex [dict get $options -errorcode] 0] eq "SOCKETSERVER"} {
	exit 1
    }
}

# In the parent: stop every worker, wait for them, and leave.
proc shutdown {} {
    foreach pid $::workers {
	catch {kill SIGTERM $pid}
    }
    foreach pid $::workers {
	catch {wait $pid}
    }
    exit 0
}

set port [::socketserver::socket server $port]
puts "listening on port $port"
flush stdout

signal trap {SIGTERM SIGINT} shutdown
set workers {}
for {set i 0} {$i < $nworkers} {incr i} {
    set pid [fork]
    if {$pid == 0} {
	signal default {SIGTERM SIGINT}
	interp bgerror {} worker_error
	set short_form [expr {$i == 0}]	;# One worker uses 1.1's short form.
	next_connection
	vwait forever
    }
    lappend workers $pid
}

# The parent waits for its workers; a signal interrupts the wait and
# runs shutdown.
while {[llength $workers]} {
    if {![catch {wait} status]} {
	set workers [lsearch -all -inline -not -exact $workers \
		[lindex $status 0]]
    }
}

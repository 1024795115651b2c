# demo.tcl --
#
#	A prefork HTTP server in one page, and a burst of clients to show it
#	working. Run it with `make demo`, or by hand:
#
#	    TCLLIBPATH=/path/to/build tclsh examples/demo.tcl
#
#	What happens:
#	  1. This process listens on 127.0.0.1 (port 0: the system picks one).
#	     socketserver starts a dispatcher thread that will accept the
#	     connections.
#	  2. It forks 4 worker processes (Tclx `fork`). Each worker says "I am
#	     ready for one connection" (`socket client`), gets a connected
#	     channel in its handler, answers one HTTP/1.0 request with its pid,
#	     and says it is ready again.
#	  3. The parent then acts as 40 clients at once (plain Tcl sockets,
#	     event-driven), prints which worker served each connection, a
#	     table per worker, and the server's `info` dict.
#	  4. It stops its workers, waits for them, and exits: 0 if every
#	     request got a good answer, 1 otherwise.

package require socketserver 2
package require Tclx			;# fork, kill, wait

set numWorkers 4
set numRequests 40
set timeoutMs 20000			;# the whole burst, generously

# ---------------------------------------------------------------------------
# 1. Listen. This binds now, in this process, and returns the port.
# ---------------------------------------------------------------------------

set port [::socketserver::socket server -myaddr 127.0.0.1 0]
puts "listening on 127.0.0.1:$port"

# ---------------------------------------------------------------------------
# 2. The workers. Everything in this section runs in the forked children.
# ---------------------------------------------------------------------------

# handle_connection --
#	Called (once per `socket client`) when the dispatcher hands this
#	worker a connection: chan is an ordinary connected TCP channel.
#	Read the request from the event loop, so that a slow client cannot
#	block the worker.
proc handle_connection {chan ipaddr clientPort} {
    fconfigure $chan -blocking 0 -buffering full -translation {auto crlf}
    fileevent $chan readable [list read_request $chan]
}

# read_request --
#	Reads the request's lines as they arrive. HTTP/1.0: the request line,
#	headers, then an empty line. Answers at the empty line.
proc read_request {chan} {
    while {[gets $chan line] >= 0} {
	if {$line eq ""} {
	    send_response $chan
	    return
	}
    }
    if {[eof $chan]} {
	finish $chan		;# The client left without asking anything.
    }
}

proc send_response {chan} {
    set body "hello from worker [pid]\n"
    puts $chan "HTTP/1.0 200 OK"
    puts $chan "Content-Type: text/plain"
    puts $chan "Content-Length: [string length $body]"
    puts $chan ""
    # Headers end in CRLF; the body goes out byte for byte, so that its
    # length is the one announced.
    fconfigure $chan -translation {auto lf}
    puts -nonewline $chan $body
    finish $chan
}

# finish --
#	Closes the connection (a non-blocking channel flushes in the
#	background) and re-arms: `socket client` is one-shot, so a worker
#	asks for its next connection only when it is done with this one.
#	Until then the dispatcher gives connections to the other workers.
proc finish {chan} {
    catch {close $chan}
    ::socketserver::socket client handle_connection
}

# worker_error --
#	A worker's background errors. If its server has gone away (the parent
#	died), nothing more will come: leave rather than linger.
proc worker_error {msg options} {
    puts stderr "worker [pid]: $msg"
    if {[lindex [dict get $options -errorcode] 0] eq "SOCKETSERVER"} {
	exit 1
    }
}

set workers {}
for {set i 0} {$i < $numWorkers} {incr i} {
    flush stdout		;# or the child would print our buffer again
    set pid [fork]
    if {$pid == 0} {
	# The child: arm for the first connection, then serve forever
	# (until the parent kills it).
	interp bgerror {} worker_error
	::socketserver::socket client handle_connection
	vwait forever
	exit 0
    }
    lappend workers $pid
}
puts "forked [llength $workers] workers: [join $workers {, }]"

# ---------------------------------------------------------------------------
# 3. The clients. From here on, only the parent runs. Every client is a
#    plain Tcl socket whose answer is read from a fileevent, so all 40 are
#    in flight at once. Each connection goes to whichever worker is free
#    first (the one that has waited longest): on a busy 2-core machine the
#    spread follows who gets the CPU.
# ---------------------------------------------------------------------------

set finished 0				;# requests answered or failed
set failures 0
foreach pid $workers {
    set served($pid) 0
}

# start_request --
#	Connects (on loopback that takes no time), sends the request at once,
#	and leaves the answer to a fileevent, so all 40 are in flight
#	together. Sending at once keeps the burst in arrival order: Tcl
#	services the newest file handlers first, so requests sent from
#	writable events would go out last-connected-first.
proc start_request {n} {
    if {[catch {socket 127.0.0.1 $::port} sock]} {
	request_failed $n "could not connect: $sock"
	return
    }
    fconfigure $sock -blocking 0 -buffering full -translation {auto crlf}
    puts $sock "GET /hello/$n HTTP/1.0"
    puts $sock "Host: 127.0.0.1:$::port"
    puts $sock ""
    flush $sock
    set ::response($n) ""
    fileevent $sock readable [list read_response $sock $n]
}

# read_response --
#	An HTTP/1.0 server closes the connection after its answer: read until
#	end of file, then look at what came.
proc read_response {sock n} {
    if {[catch {append ::response($n) [read $sock]} err]} {
	close $sock
	request_failed $n $err
	return
    }
    if {[eof $sock]} {
	close $sock
	check_response $n $::response($n)
    }
}

proc check_response {n response} {
    # Input translation "auto" has turned CRLF into plain newlines.
    if {![regexp {^HTTP/1.0 200 OK\n.*?\n\nhello from worker (\d+)\n$} \
	    $response -> pid]} {
	request_failed $n "unexpected answer: [list $response]"
    } elseif {$pid ni $::workers} {
	request_failed $n "answered by $pid, not one of our workers"
    } else {
	puts "connection $n served by worker $pid"
	incr ::served($pid)
	request_done
    }
}

proc request_failed {n why} {
    puts "connection $n FAILED: $why"
    incr ::failures
    request_done
}

proc request_done {} {
    if {[incr ::finished] == $::numRequests} {
	set ::done ok
    }
}

for {set n 1} {$n <= $numRequests} {incr n} {
    start_request $n
}
set timer [after $timeoutMs {set ::done timeout}]
vwait ::done
after cancel $timer
if {$done eq "timeout"} {
    puts "TIMEOUT: only $finished of $numRequests requests finished"
    set failures [expr {$failures + $numRequests - $finished}]
}

# ---------------------------------------------------------------------------
# 4. Report, stop the workers, leave.
# ---------------------------------------------------------------------------

puts ""
puts [format "%-10s %s" worker connections]
foreach pid $workers {
    puts [format "%-10s %d" $pid $served($pid)]
}
puts [format "%-10s %d" total [expr {$finished - $failures}]]

# The server's own view: registered workers, how many are ready now,
# connections accepted, dispatched and acknowledged, and so on.
puts ""
puts "::socketserver::socket info $port"
dict for {key value} [::socketserver::socket info $port] {
    puts [format "    %-13s %s" $key $value]
}

foreach pid $workers {
    kill SIGTERM $pid
}
foreach pid $workers {
    wait $pid
}
::socketserver::socket close $port

puts ""
if {$failures} {
    puts "$failures of $numRequests requests failed"
    exit 1
}
puts "all $numRequests requests served by $numWorkers workers"
exit 0

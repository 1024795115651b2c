#!/usr/bin/env tclsh
# prefork_http.tcl --
#
#	A small HTTP/1.1 server on a supervised prefork pool
#	(::socketserver::prefork): keep-alive, pipelined requests, HEAD,
#	request bodies with Content-Length, an idle timeout. A browser or
#	curl can use it.
#
#	    tclsh examples/prefork_http.tcl ?-port 8080? ?-workers 4? \
#		    ?-maxrequests N? ?-timeout SECONDS? ?-spawn BOOL?
#
#	    curl -v http://127.0.0.1:8080/ http://127.0.0.1:8080/pid
#	    curl --data 'hello' http://127.0.0.1:8080/echo
#	    ab -k -n 10000 -c 8 http://127.0.0.1:8080/pid
#
#	    kill -HUP  PID	rolling restart: new workers re-run -init
#	    kill -TTIN PID	one more worker; kill -TTOU PID: one less
#	    kill -TERM PID	graceful stop (so does Ctrl-C), then exit
#
#	The handler is event-driven: it sets up a fileevent and returns, so
#	the pool counts the connection as handed over at once and the worker
#	takes its next connection while it keeps serving this one. That is
#	what keep-alive needs: a browser holds six idle connections open,
#	and a worker blocked in one of them would serve nobody else. The
#	pool's -timeout therefore watches only the handler call itself; idle
#	and slow clients are this file's business (idleMs below). When its
#	worker stops (::socketserver::prefork::stopping becomes 1), a
#	connection finishes the request in progress, answers it with
#	"Connection: close", and idle ones are closed at once; the worker
#	exits when the last one is closed.

package require socketserver 2

namespace eval http {
    variable idleMs 5000	;# Keep-alive: close after this long idle.
    variable maxPerConnection 100
    variable maxHeaderBytes 16384
    variable maxBodyBytes 1048576
    variable conn		;# chan -> dict: addr buf requests timer
    array set conn {}
}

# http::accept --
#	The pool's handler: one connection, set up and left to the event
#	loop.

proc http::accept {chan addr port} {
    variable conn
    chan configure $chan -blocking 0 -translation binary -buffering full
    set conn($chan) [dict create addr $addr buf "" requests 0 timer ""]
    chan event $chan readable [list http::readable $chan]
    http::idle $chan
}

proc http::readable {chan} {
    variable conn
    if {[catch {read $chan} data] || ($data eq "" && [eof $chan])} {
	http::done $chan
	return
    }
    dict append conn($chan) buf $data
    http::serve $chan
}

# http::serve --
#	Answers every complete request in the connection's buffer (a client
#	may pipeline several), then waits for more or closes.

proc http::serve {chan} {
    variable conn
    variable maxHeaderBytes
    variable maxBodyBytes
    variable maxPerConnection
    while {[info exists conn($chan)]} {
	set buf [dict get $conn($chan) buf]
	set end [string first "\r\n\r\n" $buf]
	if {$end < 0} {
	    if {[string length $buf] > $maxHeaderBytes} {
		http::respond $chan "431 Request Header Fields Too Large" \
			{} "header too large\n" 0 0
	    }
	    return
	}
	http::cancelIdle $chan
	set lines [split [string range $buf 0 [expr {$end - 1}]] \n]
	set request [string trimright [lindex $lines 0] \r]
	set headers [dict create]
	set bad 0
	foreach line [lrange $lines 1 end] {
	    if {[regexp {^([!#-'*+.0-9A-Z^_`a-z|~-]+):\s*(.*?)\s*$} $line - \
		    name value]} {
		dict set headers [string tolower $name] $value
	    } else {
		set bad 1	;# Folded or malformed header line.
	    }
	}
	if {$bad || ![regexp {^([A-Z]+) (\S+) HTTP/(1\.[01])$} $request - \
		method target version]} {
	    http::respond $chan "400 Bad Request" {} "bad request\n" 0 0
	    return
	}
	if {[dict exists $headers transfer-encoding]} {
	    http::respond $chan "501 Not Implemented" {} \
		    "chunked request bodies are not supported\n" 0 0
	    return
	}
	set length 0
	if {[dict exists $headers content-length]} {
	    set length [dict get $headers content-length]
	    if {![string is entier -strict $length] || $length < 0
		    || $length > $maxBodyBytes} {
		http::respond $chan "413 Content Too Large" {} \
			"body too large\n" 0 0
		return
	    }
	}
	set bodyStart [expr {$end + 4}]
	if {[string length $buf] < $bodyStart + $length} {
	    return			;# The body is still on its way.
	}
	set body [string range $buf $bodyStart [expr {$bodyStart + $length - 1}]]
	dict set conn($chan) buf \
		[string range $buf [expr {$bodyStart + $length}] end]
	dict incr conn($chan) requests

	set connection [string tolower [expr {[dict exists $headers connection]
		? [dict get $headers connection] : ""}]]
	set keep [expr {$version eq "1.1" ? $connection ne "close"
		: $connection eq "keep-alive"}]
	if {$::socketserver::prefork::stopping
		|| [dict get $conn($chan) requests] >= $maxPerConnection} {
	    set keep 0
	}
	lassign [http::route $method $target $body \
		[dict get $conn($chan) requests]] status type content
	set extra [list Content-Type $type]
	if {$status eq "405 Method Not Allowed"} {
	    lappend extra Allow "GET, HEAD, POST"
	}
	http::respond $chan $status $extra $content $keep \
		[expr {$method eq "HEAD"}]
    }
}

# http::route --
#	The application. Returns {status content-type body}.

proc http::route {method target body n} {
    set path [lindex [split $target ?] 0]
    if {$method ni {GET HEAD POST}} {
	return [list "405 Method Not Allowed" text/plain "GET, HEAD or POST\n"]
    }
    switch -- $method,$path {
	GET,/ - HEAD,/ {
	    set served $::socketserver::prefork::served
	    return [list "200 OK" "text/html; charset=utf-8" [string map \
		    [list @PID@ [pid] @N@ $n @S@ $served] {<!DOCTYPE html>
<html><head><title>socketserver prefork</title></head>
<body><h1>Hello from worker @PID@</h1>
<p>Request @N@ on this connection; this worker has taken @S@
connections so far.</p>
<p><a href="/">again</a> &middot; <a href="/pid">/pid</a></p>
</body></html>
}]]
	}
	GET,/pid - HEAD,/pid {
	    return [list "200 OK" text/plain "[pid]\n"]
	}
	POST,/echo {
	    return [list "200 OK" application/octet-stream $body]
	}
    }
    return [list "404 Not Found" text/plain "no such page: $path\n"]
}

# http::respond --
#	Writes one response; keeps the connection (idle timer armed) or
#	closes it once the output has drained.

proc http::respond {chan status headers body keep head} {
    variable conn
    if {[string match "text/*" [lindex $headers 1]]
	    || [string match "*charset=utf-8" [lindex $headers 1]]} {
	set body [encoding convertto utf-8 $body]
    }
    set out "HTTP/1.1 $status\r\n"
    append out "Date: [clock format [clock seconds] -gmt 1 \
	    -format {%a, %d %b %Y %H:%M:%S GMT}]\r\n"
    append out "Server: socketserver/[package present socketserver]\r\n"
    foreach {name value} $headers {
	append out "$name: $value\r\n"
    }
    append out "Content-Length: [string length $body]\r\n"
    append out "Connection: [expr {$keep ? "keep-alive" : "close"}]\r\n\r\n"
    if {!$head} {
	append out $body
    }
    if {[catch {puts -nonewline $chan $out; flush $chan}] || !$keep} {
	http::done $chan
    } else {
	http::idle $chan
    }
}

proc http::idle {chan} {
    variable conn
    variable idleMs
    http::cancelIdle $chan
    dict set conn($chan) timer [after $idleMs [list http::done $chan]]
}

proc http::cancelIdle {chan} {
    variable conn
    after cancel [dict get $conn($chan) timer]
}

# http::done --
#	Forgets a connection and closes it (in the background, if output is
#	still draining: the channel is non-blocking).

proc http::done {chan} {
    variable conn
    if {![info exists conn($chan)]} {
	return
    }
    http::cancelIdle $chan
    unset conn($chan)
    catch {chan event $chan readable {}}
    catch {close $chan}
}

# http::stopping --
#	Trace on ::socketserver::prefork::stopping, in the workers: idle
#	keep-alive connections close now; one with a request in progress
#	answers it with "Connection: close".

proc http::stopping {args} {
    variable conn
    foreach chan [array names conn] {
	if {[dict get $conn($chan) buf] eq ""} {
	    http::done $chan
	}
    }
}

proc http::log {level message} {
    set ms [clock milliseconds]
    puts stderr [format "%s.%03d prefork_http\[%d\] %s: %s" \
	    [clock format [expr {$ms / 1000}] -format %H:%M:%S] \
	    [expr {$ms % 1000}] [pid] $level $message]
}

# A spawned worker (-spawn 1, the default on Windows) starts as a new
# tclsh and sources this file from its -init for the procs above; the
# rest is the supervisor's.
if {[info exists ::prefork_http_worker]} {
    return
}

# Options: -port, -workers, -maxrequests, -timeout, -myaddr, -spawn,
# passed on.
set options [dict create -port 8080 -workers 4]
foreach {name value} $argv {
    if {$name ni {-port -workers -maxrequests -timeout -myaddr -spawn}} {
	puts stderr "usage: $argv0 ?-port N? ?-workers N? ?-maxrequests N?\
		?-timeout SECONDS? ?-myaddr ADDRESS? ?-spawn BOOL?"
	exit 2
    }
    dict set options $name $value
}

# The pool is created before the event loop first runs (see prefork.tcl:
# its signals are then safe from every thread). A forked worker has the
# procs already; a spawned one sources this file for them.
set pool [::socketserver::prefork {*}$options -handler http::accept \
	-log http::log -init [string map \
	    [list @FILE@ [list [file normalize [info script]]]] {
	    if {[info commands ::http::accept] eq ""} {
		set ::prefork_http_worker 1
		source @FILE@
	    }
	    trace add variable ::socketserver::prefork::stopping write \
		    http::stopping
	}]]
http::log info "serving http://127.0.0.1:[dict get [$pool info] port]/\
	with [$pool workers] workers; supervisor pid [pid]"
vwait forever

#!/usr/bin/env tclsh
# websocket_echo.tcl --
#
#	A websocket echo server on tcllib's websocket package, served by a
#	prefork pool of socketserver workers that each hold up to
#	-concurrency connections at once (a websocket stays open for as long
#	as its client likes: one-shot arming would give each worker one).
#
#	    tclsh examples/websocket_echo.tcl ?-port 8016? ?-workers 2? \
#		    ?-concurrency 100? ?-myaddr 127.0.0.1?
#
#	ws://127.0.0.1:8016/echo answers every text or binary message with
#	the same message; any other path gets 404.

package require socketserver 2

namespace eval echo {
    variable maxHeaderBytes 16384
}

proc echo::log {level message} {
    puts stderr "websocket_echo\[[pid]\] $level: $message"
}

# echo::init --
#	Each worker's -init: one websocket "server" (tcllib's name for the
#	table of paths; it needs no listening socket of its own) with the
#	echo handler on /echo.
proc echo::init {} {
    package require websocket
    ::websocket::loglevel error
    ::websocket::server echo
    ::websocket::live echo /echo echo::message
}

# echo::accept --
#	The pool's handler: reads the HTTP upgrade request from the event
#	loop (the worker serves its other connections meanwhile).
proc echo::accept {chan addr port} {
    chan configure $chan -blocking 0 -translation {auto crlf} -buffering full
    chan event $chan readable [list echo::request $chan {}]
}

# echo::request --
#	Collects the request line and headers; at the blank line, upgrades
#	a websocket request for a known path or answers an error.
proc echo::request {chan lines} {
    variable maxHeaderBytes
    while {[set n [gets $chan line]] > 0} {
	lappend lines $line
	if {[string length [join $lines]] > $maxHeaderBytes} {
	    tailcall echo::refuse $chan "431 Request Header Fields Too Large"
	}
    }
    if {$n < 0} {
	if {[eof $chan]} {
	    close $chan
	} else {
	    chan event $chan readable [list echo::request $chan $lines]
	}
	return
    }
    set headers {}
    foreach line [lrange $lines 1 end] {
	if {[regexp {^([^:]+):\s*(.*)$} $line - name value]} {
	    lappend headers $name $value
	}
    }
    # tcllib 1.21's ::websocket::test fails on a request that names no
    # subprotocol; an empty list of them is what it means.
    if {![dict exists [string tolower $headers] sec-websocket-protocol]} {
	lappend headers Sec-WebSocket-Protocol {}
    }
    set target [lindex [lindex $lines 0] 1]
    set path [lindex [split $target ?] 0]
    set query [join [lrange [split $target ?] 1 end] ?]
    chan event $chan readable {}
    if {![::websocket::test echo $chan $path $headers $query]} {
	tailcall echo::refuse $chan "404 Not Found"
    }
    ::websocket::upgrade $chan
}

proc echo::refuse {chan status} {
    puts -nonewline $chan "HTTP/1.1 $status\nContent-Length: 0\nConnection:\
	    close\n\n"
    catch {close $chan}
}

# echo::message --
#	tcllib's websocket callback: echoes text and binary messages.
proc echo::message {chan type message} {
    if {$type in {text binary}} {
	::websocket::send $chan $type $message
    }
}

set options [dict create -port 8016 -workers 2 -concurrency 100 \
	-myaddr 127.0.0.1]
foreach {name value} $argv {
    if {$name ni [dict keys $options]} {
	puts stderr "usage: $argv0 ?-port N? ?-workers N? ?-concurrency N?\
		?-myaddr ADDRESS?"
	exit 2
    }
    dict set options $name $value
}
if {[catch {package require websocket}]} {
    puts stderr "tcllib's websocket package is needed (Debian: apt-get install tcllib)"
    exit 1
}

set pool [::socketserver::prefork {*}$options -handler echo::accept \
	-init echo::init -log echo::log]
puts "serving ws://[dict get $options -myaddr]:[dict get [$pool info] port]/echo\
	with [$pool workers] workers, up to [dict get $options -concurrency]\
	connections each; supervisor pid [pid]"
flush stdout
vwait forever

#!/usr/bin/env tclsh
# tcllib_httpd.tcl --
#
#	tcllib's HTTP server (package httpd, a TclOO server) served by a
#	prefork pool of socketserver workers. Each worker holds up to
#	-concurrency connections at once: httpd is event-driven (a coroutine
#	per connection), so slow or silent clients do not hold a whole
#	worker, and no worker takes more than its share.
#
#	    tclsh examples/tcllib_httpd.tcl ?-port 8015? ?-workers 3? \
#		    ?-concurrency 100? ?-myaddr 127.0.0.1?
#
#	    curl -i http://127.0.0.1:8015/
#
#	The server object is made with ::socketserver::adopt, which creates
#	it as usual but keeps its constructor from binding a port of its
#	own; connections reach it through its `connect` method, the pool's
#	handler.

package require socketserver 2

namespace eval example {}

# example::log --
#	The pool's -log: one line on stderr.
proc example::log {level message} {
    puts stderr "tcllib_httpd\[[pid]\] $level: $message"
}

# example::init --
#	Each worker's -init: an httpd server object (HTTPD) that answers
#	every path with a page naming the worker.
proc example::init {} {
    package require httpd
    ::clay::define ::example::hello {
	method content {} {
	    my puts "<html><body><p>hello from worker [pid]</p></body></html>"
	}
    }
    set info [::socketserver::socket info]
    ::socketserver::adopt ::httpd::server ::HTTPD \
	    port [dict get $info port] myaddr [lindex [dict get $info address] 0]
    ::HTTPD plugin dispatch ::httpd::plugin.dict_dispatch
    ::HTTPD uri add * /* [list mixin {reply ::example::hello}]
    ::HTTPD uri add * / [list mixin {reply ::example::hello}]
}

set options [dict create -port 8015 -workers 3 -concurrency 100 \
	-myaddr 127.0.0.1]
foreach {name value} $argv {
    if {$name ni [dict keys $options]} {
	puts stderr "usage: $argv0 ?-port N? ?-workers N? ?-concurrency N?\
		?-myaddr ADDRESS?"
	exit 2
    }
    dict set options $name $value
}
if {[catch {package require httpd}]} {
    puts stderr "tcllib's httpd package is needed (Debian: apt-get install tcllib)"
    exit 1
}

set pool [::socketserver::prefork {*}$options -handler {::HTTPD connect} \
	-init example::init -log example::log]
puts "serving http://[dict get $options -myaddr]:[dict get [$pool info] port]/\
	with [$pool workers] workers, up to [dict get $options -concurrency]\
	connections each; supervisor pid [pid]"
flush stdout
vwait forever

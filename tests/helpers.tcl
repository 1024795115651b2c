# helpers.tcl --
#
#	Shared by the socketserver test files: loading the package, bounded
#	waits, forked workers (Tclx) and their reaping, and small clients.
#	Every wait here ends in a failure after a timeout, never hangs.

package require tcltest 2.5
namespace import -force ::tcltest::*

package require socketserver 2

testConstraint tclx [expr {![catch {package require Tclx}]}]
testConstraint thread [expr {![catch {package require Thread}]}]
# The Thread package itself, for a child tclsh that creates threads.
testConstraint threadPackage [testConstraint thread]
if {![testConstraint thread] && ![catch {package require Testthread}]} {
    # No Thread package (none exists for Tcl 9 on Debian 12): Testthread,
    # Tcl's own thread test command (tools/build-tcl9), behind the few
    # thread:: commands the tests use, defined in every thread it starts.
    # A thread's script ends once thread::wait returns, as with Thread.
    namespace eval ::sstest {}
    set ::sstest::threadShim {
	namespace eval ::thread {
	    proc id {} {testthread id}
	    proc exists {id} {expr {$id in [testthread names]}}
	    proc send {-async id script} {testthread send -async $id $script}
	    proc wait {} {vwait ::thread::released}
	    proc create {script} {
		testthread create -joinable "$::sstest::threadShim\n$script"
	    }
	    proc release {-wait id} {
		testthread send -async $id {set ::thread::released 1}
		testthread join $id
	    }
	}
	thread::id	;# Puts this thread on the list testthread sends to.
    }
    eval $::sstest::threadShim
    testConstraint thread 1
}
testConstraint tls [expr {![catch {package require tls}]}]
testConstraint openssl [expr {[auto_execok openssl] ne ""}]
testConstraint ipv6 [expr {![catch {
    close [socket -server list -myaddr ::1 0]
}]}]
testConstraint linux [expr {[file isdirectory /proc/self/fd]}]
testConstraint tcl9 [package vsatisfies [package provide Tcl] 9-]
# A pool's default mode works here: it forks its workers with Tclx on Tcl
# 8.6, and spawns them on Tcl 9, where a forked child shares its parent's
# notifier.
testConstraint defaultPool [expr {[testConstraint tcl9] || [testConstraint tclx]}]

namespace eval ::sstest {
    variable children {}
}

# sstest::intError --
#	The message and errorCode this Tcl gives for value where an integer
#	is expected (TCL VALUE INTEGER on 8.6, TCL VALUE NUMBER on 9), taken
#	from a real failing call of Tcl's own.
proc sstest::intError {value} {
    catch {string repeat x $value} msg opts
    list $msg [dict get $opts -errorcode]
}

# sstest::waitUntil --
#	Runs the event loop until expr (evaluated at global level) is true.
#	Returns 1, or 0 when timeoutMs passes first. Polls every 5 ms: used
#	for state only the dispatcher knows (info counters).
proc sstest::waitUntil {cond {timeoutMs 5000}} {
    set deadline [expr {[clock milliseconds] + $timeoutMs}]
    while {![uplevel #0 [list expr $cond]]} {
	if {[clock milliseconds] > $deadline} {
	    return 0
	}
	set ::sstest::tick 0
	after 5 {set ::sstest::tick 1}
	vwait ::sstest::tick
    }
    return 1
}

# sstest::vwaitFor --
#	vwait on a global variable, bounded: returns the variable's value, or
#	"timeout" when timeoutMs passes first.
proc sstest::vwaitFor {var {timeoutMs 5000}} {
    upvar #0 $var v
    set id [after $timeoutMs [list set ::$var timeout]]
    vwait ::$var
    after cancel $id
    return $v
}

# sstest::fork --
#	Forks a child (Tclx) that evaluates script at global level and then
#	enters the event loop until it is killed or the script exits. The
#	child can never return into the test file. Returns the child's pid,
#	remembered for sstest::reapAll.
proc sstest::fork {script} {
    variable children
    flush stdout
    flush stderr
    set pid [::fork]
    if {$pid == 0} {
	if {[catch {uplevel #0 $script} msg]} {
	    catch {puts stderr "child [pid]: $msg"}
	    ::exit 1
	}
	after 60000 {::exit 2}	;# a lost child never outlives the suite
	vwait ::sstest::forever
	::exit 0
    }
    lappend children $pid
    return $pid
}

# sstest::reap --
#	Kills (SIGKILL) and waits for the given children. Bounded: wait
#	after SIGKILL returns at once.
proc sstest::reap {args} {
    variable children
    foreach pid $args {
	catch {::kill SIGKILL $pid}
	catch {::wait $pid}
	set i [lsearch -exact $children $pid]
	if {$i >= 0} {
	    set children [lreplace $children $i $i]
	}
    }
}

proc sstest::reapAll {} {
    variable children
    sstest::reap {*}$children
}

# sstest::fetch --
#	Connects to host:port, sends line (if any), and returns the first
#	line of the answer (or "timeout"/"eof"). Bounded by timeoutMs.
proc sstest::fetch {port {host 127.0.0.1} {line ""} {timeoutMs 5000}} {
    set s [socket $host $port]
    fconfigure $s -buffering line
    if {$line ne ""} {
	puts $s $line
    }
    set result [sstest::readLine $s $timeoutMs]
    close $s
    return $result
}

# sstest::openFds --
#	The number of descriptors this process has open (Linux).
proc sstest::openFds {} {
    llength [glob -nocomplain /proc/self/fd/*]
}

# A handler for forked workers: answers "pid ipaddr", closes, re-arms.
proc sstest::echoPid {chan addr port} {
    fconfigure $chan -buffering line
    puts $chan "[pid] $addr"
    close $chan
    ::socketserver::socket client ::sstest::echoPid
}

# sstest::inChild --
#	Evaluates script in a new tclsh (the package loaded), for a call that
#	might never return: returns the script's result as {code result
#	errorCode}, or "timeout" when timeoutMs passes first (the child is
#	then killed). The script's own stdout is not captured.
proc sstest::inChild {script {timeoutMs 10000}} {
    set body [list apply {{script} {
	package require socketserver 2
	set code [catch {uplevel #0 $script} result opts]
	set ec [expr {$code ? [dict get $opts -errorcode] : ""}]
	puts stderr [list ::sstest::childResult $code $result $ec]
	exit 0
    }} $script]
    set chan [open |[list [info nameofexecutable] << $body 2>@1] r]
    fconfigure $chan -blocking 0
    set ::sstest::childOut ""
    set ::sstest::childDone ""
    fileevent $chan readable [list apply {{chan} {
	append ::sstest::childOut [read $chan]
	if {[eof $chan]} {
	    set ::sstest::childDone 1
	}
    }} $chan]
    set r [sstest::vwaitFor sstest::childDone $timeoutMs]
    if {$r eq "timeout"} {
	foreach pid [pid $chan] {
	    catch {exec kill -KILL $pid}
	}
    }
    fconfigure $chan -blocking 1
    catch {close $chan}
    if {$r eq "timeout"} {
	return timeout
    }
    foreach line [split $::sstest::childOut \n] {
	if {[lindex $line 0] eq "::sstest::childResult"} {
	    return [lrange $line 1 end]
	}
    }
    return [list error $::sstest::childOut]
}

# sstest::spawn --
#	Starts a command pipeline (its stdout and stderr to us, its stdin
#	from us), collecting its output lines as they come. Returns the
#	channel; sstest::awaitLine reads from it, sstest::kill ends it.
proc sstest::spawn {args} {
    set chan [open |[list {*}$args 2>@1] r+]
    fconfigure $chan -blocking 0 -buffering line
    set ::sstest::out($chan) {}
    set ::sstest::ended($chan) 0
    fileevent $chan readable [list apply {{chan} {
	while {[gets $chan line] >= 0} {
	    lappend ::sstest::out($chan) $line
	}
	if {[eof $chan]} {
	    set ::sstest::ended($chan) 1
	    fileevent $chan readable {}
	}
	incr ::sstest::outChanged
    }} $chan]
    return $chan
}

# sstest::awaitLine --
#	The first line from a sstest::spawn child matching the glob pattern
#	(dropping those before it), or "eof", or "timeout".
proc sstest::awaitLine {chan pattern {timeoutMs 10000}} {
    set deadline [expr {[clock milliseconds] + $timeoutMs}]
    while 1 {
	set i [lsearch -glob $::sstest::out($chan) $pattern]
	if {$i >= 0} {
	    set line [lindex $::sstest::out($chan) $i]
	    set ::sstest::out($chan) [lrange $::sstest::out($chan) $i+1 end]
	    return $line
	}
	if {$::sstest::ended($chan)} {
	    return eof
	}
	set left [expr {$deadline - [clock milliseconds]}]
	if {$left <= 0} {
	    return timeout
	}
	set id [after $left {incr ::sstest::outChanged}]
	vwait ::sstest::outChanged
	after cancel $id
    }
}

# sstest::kill --
#	SIGKILL to a sstest::spawn child's processes, and reaps them.
proc sstest::kill {args} {
    foreach chan $args {
	if {$chan ni [chan names]} {
	    continue
	}
	foreach pid [pid $chan] {
	    catch {exec kill -KILL $pid}
	}
	catch {fconfigure $chan -blocking 1}
	catch {close $chan}
	unset -nocomplain ::sstest::out($chan) ::sstest::ended($chan)
    }
}

# sstest::hold --
#	A handler for event-driven workers (client -concurrency): answers
#	"pid ipaddr" and keeps the connection open. A line "close" closes
#	it, "concurrency N" calls `client -concurrency N` again, anything
#	else is echoed as "pid line"; end-of-file closes it.
proc sstest::hold {chan addr port} {
    fconfigure $chan -buffering line -blocking 0
    puts $chan "[pid] $addr"
    fileevent $chan readable [list sstest::holdLine $chan]
}
proc sstest::holdLine {chan} {
    if {[gets $chan line] < 0} {
	if {[eof $chan]} {
	    close $chan
	}
	return
    }
    switch -glob -- $line {
	close {close $chan}
	{concurrency *} {
	    ::socketserver::socket client -concurrency [lindex $line 1] \
		    sstest::hold
	    puts $chan "[pid] ok"
	}
	default {puts $chan "[pid] $line"}
    }
}

# sstest::readLine --
#	Reads one line from chan from the event loop; returns the line,
#	"eof" or "timeout" after timeoutMs.
proc sstest::readLine {chan {timeoutMs 5000}} {
    fconfigure $chan -blocking 0 -buffering line
    set key ::sstest::line[incr ::sstest::lineSeq]
    set $key ""
    fileevent $chan readable [list apply {{chan key} {
	if {[gets $chan l] >= 0} {
	    set $key $l
	} elseif {[eof $chan]} {
	    set $key eof
	}
    }} $chan $key]
    set result [sstest::vwaitFor [string range $key 2 end] $timeoutMs]
    catch {fileevent $chan readable {}}
    unset $key
    return $result
}

# sstest::holdClients / sstest::closeClients --
#	Opens n clients to port and reads each one's first line (see
#	sstest::hold); returns a list of {chan firstWordOfThatLine}. Closing
#	them.
proc sstest::holdClients {port n {timeoutMs 5000}} {
    set result {}
    for {set i 0} {$i < $n} {incr i} {
	set c [socket 127.0.0.1 $port]
	lappend result [list $c [lindex [sstest::readLine $c $timeoutMs] 0]]
    }
    return $result
}
proc sstest::closeClients {clients} {
    foreach c $clients {
	catch {close [lindex $c 0]}
    }
}

# sstest::count --
#	One counter of the server on port.
proc sstest::count {port key} {
    dict get [::socketserver::socket info $port] $key
}

# sstest::clientProcess --
#	Starts a tclsh of its own holding n connections to port, so that
#	workers forked later by the test process do not inherit them (a
#	copy would keep a connection open after the client closes it).
#	It prints each connection's greeting line, then obeys lines on its
#	stdin: "send I LINE" prints connection I's answer, "close I" closes
#	it. Returns its channel (open |... r+, line-buffered); close it to
#	end the process.
proc sstest::clientProcess {port n} {
    set script {
	fconfigure stdout -buffering line
	lassign $argv port n
	for {set i 0} {$i < $n} {incr i} {
	    set c($i) [socket 127.0.0.1 $port]
	    fconfigure $c($i) -buffering line
	    puts [gets $c($i)]
	}
	while {[gets stdin line] >= 0} {
	    lassign $line what i text
	    if {$what eq "close"} {
		close $c($i)
	    } else {
		puts $c($i) $text
		puts [gets $c($i)]
	    }
	}
    }
    set file [makeFile $script clientprocess.tcl]
    set chan [open |[list [info nameofexecutable] $file $port $n] r+]
    fconfigure $chan -buffering line
    return $chan
}

# sstest::startExample --
#	Runs examples/NAME with args in a tclsh of its own and waits (10 s at
#	most) for the line in which it names its URL (scheme://addr:port/).
#	Returns a dict: chan (its stdout and stderr), port, pid.
proc sstest::startExample {name args} {
    set file [file join [file dirname [file normalize [info script]]] \
	    .. examples $name]
    set chan [open |[list [info nameofexecutable] $file {*}$args 2>@1] r]
    chan configure $chan -blocking 0 -buffering line
    set key ::sstest::example[incr ::sstest::exampleSeq]
    set $key ""
    chan event $chan readable [list apply {{chan key} {
	append $key [read $chan]
	if {[eof $chan]} {
	    chan event $chan readable {}
	    append $key "\n<eof>"
	}
    }} $chan $key]
    if {![sstest::waitUntil "\[regexp {://\[0-9.\]+:\\d+/} \[set $key\]\]" \
	    10000]} {
	error "example $name did not start: [set $key]"
    }
    regexp {://[0-9.]+:(\d+)/} [set $key] - port
    dict create chan $chan port $port pid [pid $chan] output $key
}

# sstest::stopExample --
#	SIGTERM (a graceful stop), then waits for its end (10 s at most, then
#	SIGKILL). Returns 1 if it ended by itself, with its output last.
proc sstest::stopExample {example} {
    set key [dict get $example output]
    catch {::kill SIGTERM [dict get $example pid]}
    set ended [sstest::waitUntil "\[string match *<eof> \[set $key\]\]" 10000]
    if {!$ended} {
	catch {::kill SIGKILL [dict get $example pid]}
    }
    set chan [dict get $example chan]
    chan configure $chan -blocking 1
    catch {close $chan}
    return $ended
}

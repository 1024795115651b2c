# helpers.tcl --
#
#	Shared by the Windows test files (tests/win/*.test), which the
#	Windows tclsh runs (under wine in `make test-win`). The ideas of
#	tests/helpers.tcl without Tclx: bounded waits, and worker processes
#	started with `open |` (Windows has no fork), killed with
#	TerminateProcess (taskkill /F) and reaped by closing their pipe.
#	Every wait here ends after a timeout, never hangs.

package require tcltest 2.5
namespace import -force ::tcltest::*

package require socketserver 2

testConstraint win [expr {$::tcl_platform(platform) eq "windows"}]
testConstraint ipv6 [expr {![catch {
    close [socket -server list -myaddr ::1 0]
}]}]
testConstraint taskkill [expr {[auto_execok taskkill] ne ""}]

namespace eval ::wintest {
    variable dir		;# Files for this test file: scripts, control files.
    variable lines		;# lines(chan): output of a child not yet read.
    variable ended		;# ended(chan): the child's output has ended.
    variable children {}	;# Pipes of children still running.
    variable changed 0		;# Bumped whenever a child prints.
    variable seq 0
}

# The directory the package was loaded from, passed to every child
# through TCLLIBPATH so that it loads the same build.
set ::env(TCLLIBPATH) [list [file dirname [file dirname [lindex [lsearch \
	-inline -index 1 [info loaded] Socketserver] 0]]]]

set ::wintest::dir [file join [temporaryDirectory] win[pid]]
file mkdir $::wintest::dir

# wintest::waitUntil --
#	Runs the event loop until cond (an expression, evaluated at global
#	level) is true. Returns 1, or 0 when timeoutMs passes first. Polls
#	every 5 ms: for state only the dispatcher knows (info counters).
proc wintest::waitUntil {cond {timeoutMs 10000}} {
    set deadline [expr {[clock milliseconds] + $timeoutMs}]
    while {![uplevel #0 [list expr $cond]]} {
	if {[clock milliseconds] > $deadline} {
	    return 0
	}
	set ::wintest::tick 0
	after 5 {set ::wintest::tick 1}
	vwait ::wintest::tick
    }
    return 1
}

# wintest::vwaitFor --
#	vwait on a global variable, bounded: returns its value, or "timeout"
#	when timeoutMs passes first.
proc wintest::vwaitFor {var {timeoutMs 10000}} {
    upvar #0 $var v
    set id [after $timeoutMs [list set ::$var timeout]]
    vwait ::$var
    after cancel $id
    return $v
}

# wintest::path --
#	A file name in this test file's directory.
proc wintest::path {name} {
    variable dir
    file join $dir $name
}

# wintest::writeFile --
#	Writes text to a file in the test directory; returns its name.
proc wintest::writeFile {name text} {
    set f [path $name]
    set ch [open $f w]
    puts -nonewline $ch $text
    close $ch
    return $f
}

# The worker process: joins the server whose control file is PATH with
# `client -connect` (or, PATH "-", the package is only loaded). Prints
# "joined" once armed, then for each connection "took ADDR PORT", reads
# one line, answers "NAME PID ADDR PORT LINE", closes and arms again.
# Background errors are printed as "bgerror MESSAGE ERRORCODE". MODE:
#   serve	as above, until killed, its stdin ends, or 60 s pass;
#   block	arms, prints "joined", then blocks in a read of stdin with no
#		event loop: a connection sent to it is never received;
#   fail	as serve, but the handler of the first connection raises an
#		error (errorCode WINTEST FAIL) before it answers.
#   concurrency	as serve, but armed once with -concurrency 2: it holds
#		two connections at once and never calls client again.
wintest::writeFile worker.tcl {
    package require socketserver 2
    lassign $argv path name mode
    fconfigure stdout -buffering line
    interp bgerror {} [list apply {{msg opts} {
	puts [list bgerror $msg [dict get $opts -errorcode]]
    }}]
    proc serve {chan addr port} {
	puts [list took $addr $port]
	if {$::mode eq "fail" && ![info exists ::failed]} {
	    set ::failed 1
	    arm
	    return -code error -errorcode {WINTEST FAIL} "handler failed"
	}
	fconfigure $chan -buffering line -blocking 0
	fileevent $chan readable [list answer $chan $addr $port]
    }
    proc answer {chan addr port} {
	if {[gets $chan line] < 0 && ![eof $chan]} {
	    return
	}
	catch {puts $chan [list $::name [pid] $addr $port $line]}
	catch {close $chan}
	arm
    }
    proc arm {} {
	if {$::mode ne "concurrency"} {
	    ::socketserver::socket client -connect $::path serve
	} elseif {![info exists ::armed]} {
	    set ::armed 1
	    ::socketserver::socket client -connect $::path -concurrency 2 serve
	}
    }
    if {[catch arm msg opts]} {
	puts [list error $msg [dict get $opts -errorcode]]
	exit 1
    }
    puts joined
    if {$mode eq "block"} {
	gets stdin
	exit 0
    }
    fconfigure stdin -blocking 0
    fileevent stdin readable {
	if {[gets stdin] < 0 && [eof stdin]} {
	    exit 0
	}
    }
    after 60000 {exit 2}
    vwait forever
}

# wintest::start --
#	Starts a command pipeline (stdout and stderr to us, stdin from us)
#	and collects its output lines as they come. Returns the channel.
proc wintest::start {args} {
    variable lines
    variable ended
    variable children
    set chan [open |[list {*}$args 2>@1] r+]
    fconfigure $chan -blocking 0 -buffering line
    set lines($chan) {}
    set ended($chan) 0
    lappend children $chan
    fileevent $chan readable [list wintest::Collect $chan]
    return $chan
}

proc wintest::Collect {chan} {
    variable lines
    variable ended
    variable changed
    while {[gets $chan line] >= 0} {
	lappend lines($chan) $line
    }
    if {[eof $chan]} {
	set ended($chan) 1
	fileevent $chan readable {}
    }
    incr changed
}

# wintest::worker --
#	Starts the worker script in a new tclsh that joins the server whose
#	control file is path, as name. Returns its channel.
proc wintest::worker {path name {mode serve}} {
    start [info nameofexecutable] [path worker.tcl] $path $name $mode
}

# wintest::tclScript --
#	Starts tclsh on script (written to a file) with the given args.
proc wintest::tclScript {script args} {
    variable seq
    start [info nameofexecutable] \
	[writeFile script[incr seq].tcl $script] {*}$args
}

# wintest::await --
#	Waits for the child on chan to print a line matching the glob
#	pattern. Returns that line (the lines before it are dropped), or
#	"timeout", or "eof" if the child's output ends first.
proc wintest::await {chan pattern {timeoutMs 10000}} {
    variable lines
    variable ended
    set deadline [expr {[clock milliseconds] + $timeoutMs}]
    while 1 {
	set i [lsearch -glob $lines($chan) $pattern]
	if {$i >= 0} {
	    set line [lindex $lines($chan) $i]
	    set lines($chan) [lrange $lines($chan) [expr {$i + 1}] end]
	    return $line
	}
	if {$ended($chan)} {
	    return eof
	}
	set left [expr {$deadline - [clock milliseconds]}]
	if {$left <= 0} {
	    return timeout
	}
	set id [after $left {incr ::wintest::changed}]
	vwait ::wintest::changed
	after cancel $id
    }
}

# wintest::awaitEnd --
#	Waits for the child's output to end (it exited). Returns 1, or 0
#	after timeoutMs.
proc wintest::awaitEnd {chan {timeoutMs 10000}} {
    waitUntil "\$::wintest::ended($chan)" $timeoutMs
}

# wintest::killPid --
#	TerminateProcess on one process (taskkill /F). Returns 1 when it
#	was killed.
proc wintest::killPid {pid} {
    expr {![catch {exec taskkill /F /PID $pid}]}
}

# wintest::kill --
#	Kills the processes of the pipeline on chan without reaping them.
proc wintest::kill {chan} {
    foreach pid [pid $chan] {
	killPid $pid
    }
}

# wintest::stop --
#	Kills the children on the given channels and reaps them (a blocking
#	close waits for them).
proc wintest::stop {args} {
    variable lines
    variable ended
    variable children
    foreach chan $args {
	if {$chan ni $children} {
	    continue
	}
	catch {kill $chan}
	catch {fconfigure $chan -blocking 1}
	catch {close $chan}
	set children [lsearch -all -inline -not -exact $children $chan]
	unset -nocomplain lines($chan) ended($chan)
    }
}

proc wintest::stopAll {} {
    variable children
    stop {*}$children
}

# wintest::closeServers --
#	Closes every server this process has open (bounded, should close
#	not close anything).
proc wintest::closeServers {} {
    for {set i 0} {$i < 100} {incr i} {
	if {[catch {::socketserver::socket close}]} {
	    break
	}
    }
}

# wintest::stat --
#	One field of the first server's `info`.
proc wintest::stat {key} {
    dict get [::socketserver::socket info] $key
}

# wintest::cleanup --
#	For every test's -cleanup: children, servers, control files.
proc wintest::cleanup {} {
    stopAll
    closeServers
    foreach f [glob -nocomplain -directory $::wintest::dir *.ctl] {
	catch {file delete $f}
    }
}

# wintest::ask --
#	Connects to host:port, sends line, returns the answer's first line
#	("eof", "timeout"); sets ::wintest::localPort to the client's own
#	port.
proc wintest::ask {port line {host 127.0.0.1} {timeoutMs 10000}} {
    set s [socket $host $port]
    set ::wintest::localPort [lindex [fconfigure $s -sockname] 2]
    fconfigure $s -buffering line
    puts $s $line
    set result [readAnswer $s $timeoutMs]
    close $s
    return $result
}

# wintest::readAnswer --
#	Reads the first line that comes on the client socket s ("eof" if
#	none comes), bounded; the socket stays open.
proc wintest::readAnswer {s {timeoutMs 10000}} {
    fconfigure $s -blocking 0 -buffering line
    set ::wintest::answer ""
    fileevent $s readable [list apply {{s} {
	if {[gets $s l] >= 0} {
	    set ::wintest::answer $l
	} elseif {[eof $s]} {
	    set ::wintest::answer eof
	} else {
	    return
	}
	fileevent $s readable {}
    }} $s]
    vwaitFor wintest::answer $timeoutMs
}

# wintest::answerLocal --
#	A one-shot handler for the test process's own interp: answers
#	"local PID ADDR PORT LINE" and closes.
proc wintest::answerLocal {chan addr port} {
    fconfigure $chan -buffering line -blocking 0
    fileevent $chan readable [list apply {{chan addr port} {
	if {[gets $chan line] < 0 && ![eof $chan]} {
	    return
	}
	catch {puts $chan [list local [pid] $addr $port $line]}
	close $chan
    }} $chan $addr $port]
}

# wintest::errorCode --
#	The errorCode of script's error (evaluated in the caller), or "ok".
proc wintest::errorCode {script} {
    if {[catch {uplevel 1 $script} m o]} {
	return [dict get $o -errorcode]
    }
    return ok
}

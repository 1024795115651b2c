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
    fconfigure $s -buffering line -blocking 0
    if {$line ne ""} {
	puts $s $line
    }
    set key ::sstest::fetch[incr ::sstest::fetchSeq]
    set $key ""
    fileevent $s readable [list apply {{s key} {
	if {[gets $s l] >= 0} {
	    set $key $l
	} elseif {[eof $s]} {
	    set $key eof
	}
    }} $s $key]
    set result [sstest::vwaitFor [string range $key 2 end] $timeoutMs]
    close $s
    unset $key
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

# ===========================================================================
# The harness of the worker suites (fault.test, fork.test, thread.test):
# servers and their counters, reports from processes out of reach, clients
# read later, connection storms, and remote children that run a server.
# ===========================================================================

# sstest::server --
#	A server on a free port of 127.0.0.1. Returns the port.
proc sstest::server {} {
    ::socketserver::socket server -myaddr 127.0.0.1 0
}

# sstest::stat --
#	One field of `info` for port.
proc sstest::stat {port key} {
    dict get [::socketserver::socket info $port] $key
}

# sstest::counts --
#	The named fields of `info` for port, as a dict in that order.
proc sstest::counts {port args} {
    sstest::Fields [::socketserver::socket info $port] $args
}

proc sstest::Fields {info keys} {
    set result {}
    foreach key $keys {
	dict set result $key [dict get $info $key]
    }
    return $result
}

# sstest::named --
#	value with each given pid, port or thread id written as its name
#	(whole words only), so that a -result, evaluated before -setup runs,
#	can name them:  sstest::named $answers $child CHILD
proc sstest::named {value args} {
    foreach {number name} $args {
	regsub -all "\\m$number\\M" $value $name value
    }
    return $value
}

# sstest::reportFile, sstest::report, sstest::awaitReport,
# sstest::clearReports --
#	How processes out of reach (forked children, workers of a remote
#	child) tell the test something: a file in the test directory, written
#	whole (rename) so it is never read half-written. awaitReport returns
#	its contents, or "timeout".
proc sstest::reportFile {name} {
    file join [temporaryDirectory] report-$name
}

proc sstest::report {name value} {
    set f [reportFile $name]
    set ch [open $f.[pid] w]
    puts -nonewline $ch $value
    close $ch
    file rename -force $f.[pid] $f
}

proc sstest::awaitReport {name {timeoutMs 10000}} {
    set f [reportFile $name]
    if {![sstest::waitUntil "\[file exists [list $f]\]" $timeoutMs]} {
	return timeout
    }
    set ch [open $f]
    set value [read $ch]
    close $ch
    return $value
}

proc sstest::clearReports {} {
    file delete {*}[glob -nocomplain [reportFile *]]
}

# sstest::connect, sstest::finished, sstest::closeClients --
#	Clients whose answers the test reads later: connect now; lines
#	gather in ::sstest::got(chan), then "eof" (or "reset" on a read
#	error). finished: whether every one of socks has ended.
proc sstest::connect {port} {
    set s [socket 127.0.0.1 $port]
    fconfigure $s -blocking 0 -buffering line
    set ::sstest::got($s) {}
    fileevent $s readable [list sstest::ReadLines $s]
    return $s
}

proc sstest::ReadLines {s} {
    if {[catch {
	while {[gets $s line] >= 0} {
	    lappend ::sstest::got($s) $line
	}
    }]} {
	lappend ::sstest::got($s) reset
	fileevent $s readable {}
	return
    }
    if {[eof $s]} {
	lappend ::sstest::got($s) eof
	fileevent $s readable {}
    }
}

proc sstest::finished {socks} {
    foreach s $socks {
	if {[lindex $::sstest::got($s) end] ni {eof reset}} {
	    return 0
	}
    }
    return 1
}

proc sstest::closeClients {socks} {
    foreach s $socks {
	catch {close $s}
	unset -nocomplain ::sstest::got($s)
    }
}

# sstest::storm --
#	Makes total connections to 127.0.0.1:port, at most concurrency at a
#	time, driven by this thread's event loop; with -send 1 each client
#	first sends "line N". Each keeps the first line of the answer ("eof"
#	if none). Returns the answers in order of arrival, or what it has
#	after -timeout ms (the caller's checks then fail), every socket
#	closed.
proc sstest::storm {port total concurrency args} {
    variable storm
    set opts [dict merge {-send 0 -timeout 20000} $args]
    array unset storm
    array set storm [list port $port total $total started 0 finished 0 \
	    answers {} socks {} send [dict get $opts -send]]
    set ::sstest::stormDone 0
    for {set i 0} {$i < $concurrency} {incr i} {
	StormConnect
    }
    if {$storm(total) > 0} {
	sstest::vwaitFor sstest::stormDone [dict get $opts -timeout]
    }
    foreach s $storm(socks) {
	catch {close $s}
    }
    return $storm(answers)
}

proc sstest::StormConnect {} {
    variable storm
    if {$storm(started) >= $storm(total)} {
	return
    }
    set n [incr storm(started)]
    if {[catch {socket 127.0.0.1 $storm(port)} s]} {
	StormDone "connect failed: $s"
	return
    }
    lappend storm(socks) $s
    fconfigure $s -blocking 0 -buffering line
    if {$storm(send)} {
	puts $s "line $n"
    }
    fileevent $s readable [list sstest::StormRead $s]
}

proc sstest::StormRead {s} {
    variable storm
    if {[gets $s line] < 0} {
	if {![eof $s]} {
	    return
	}
	set line eof
    }
    close $s
    set storm(socks) [lsearch -all -inline -not -exact $storm(socks) $s]
    StormDone $line
}

proc sstest::StormDone {answer} {
    variable storm
    lappend storm(answers) $answer
    if {[incr storm(finished)] >= $storm(total)} {
	set ::sstest::stormDone 1
    } else {
	StormConnect
    }
}

# sstest::pidsOf --
#	The distinct first words of answers, sorted.
proc sstest::pidsOf {answers} {
    set pids {}
    foreach a $answers {
	lappend pids [lindex $a 0]
    }
    lsort -integer -unique $pids
}

# ---------------------------------------------------------------------------
# Forked workers of this process (fork.test).
# ---------------------------------------------------------------------------

# sstest::ended, sstest::alive --
#	Whether a child of this process has ended (exited or killed), and
#	its contrary. Never block; a child that has ended is reaped and its
#	Tclx status kept in ::sstest::status(pid).
proc sstest::ended {pid} {
    variable status
    if {![info exists status($pid)]} {
	set st [wait -nohang $pid]
	if {$st eq ""} {
	    return 0
	}
	set status($pid) $st
    }
    return 1
}

proc sstest::alive {pid} {
    expr {![ended $pid]}
}

# Handlers run by the forked workers; each answers, closes and re-arms
# (sstest::echoPid answers "pid address").

# Answers what `info` says in the worker: accepted, workers, server pid.
proc sstest::answerInfo {chan addr port} {
    set i [::socketserver::socket info]
    puts $chan "[dict get $i accepted] [dict get $i workers] [dict get $i pid]"
    close $chan
    ::socketserver::socket client sstest::answerInfo
}

# Answers "pid openFds" (the count includes chan itself).
proc sstest::answerFds {chan addr port} {
    puts $chan "[pid] [sstest::openFds]"
    close $chan
    ::socketserver::socket client sstest::answerFds
}

# Answers "pid", then leaves the process.
proc sstest::answerAndExit {chan addr port} {
    puts $chan [pid]
    close $chan
    exit 0
}

# A child's background errors go to a report named after it, so that
# nothing reaches the test's output and a test can read them.
proc sstest::childBgerror {msg options} {
    report bgerror-[pid] [list $msg [dict get $options -errorcode]]
}

# Forked children's scripts start with this.
set sstest::prologue {
    interp bgerror {} sstest::childBgerror
}

# sstest::checkStorm --
#	A storm's answers checked as a whole: how many, the first few that
#	are not "pid 127.0.0.1", and whether exactly the given pids answered.
proc sstest::checkStorm {answers pids} {
    set bad [lsearch -all -inline -not -regexp $answers {^\d+ 127\.0\.0\.1$}]
    list [llength $answers] [lrange $bad 0 4] \
	    [expr {[pidsOf $answers] eq [lsort -integer $pids]}]
}

# ---------------------------------------------------------------------------
# Worker threads of this process (thread.test).
# ---------------------------------------------------------------------------

# sstest::worker --
#	Starts a thread that works for port: it answers each connection with
#	its thread id and re-arms. Its background errors are sent to this
#	thread, appended to ::sstest::threadErrors. Returns the thread id.
proc sstest::worker {port} {
    thread::create [string map [list @AUTOPATH@ [list $::auto_path] \
	    @PORT@ $port @MAIN@ [thread::id]] {
	set auto_path @AUTOPATH@
	package require socketserver
	proc answer {chan addr port} {
	    puts $chan [thread::id]
	    close $chan
	    ::socketserver::socket client -port @PORT@ answer
	}
	interp bgerror {} [list apply {{msg options} {
	    thread::send -async @MAIN@ [list lappend ::sstest::threadErrors \
		    [list [thread::id] $msg [dict get $options -errorcode]]]
	}}]
	::socketserver::socket client -port @PORT@ answer
	thread::wait
    }]
}

# sstest::release --
#	Ends threads and waits until they are gone.
proc sstest::release {args} {
    foreach t $args {
	if {[thread::exists $t]} {
	    thread::release -wait $t
	}
    }
}

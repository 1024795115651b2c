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

# ===========================================================================
# The harness of the worker suites (fault.test, fork.test, thread.test,
# prefork_spawn.test): servers and their counters, results that name what
# they assert, reports from processes out of reach, clients read later,
# connection storms, forked workers, worker threads, remote children that
# run a server, and spawn-mode pools.
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
    Fields [::socketserver::socket info $port] $args
}

proc sstest::Fields {info keys} {
    set result {}
    foreach key $keys {
	dict set result $key [dict get $info $key]
    }
    return $result
}

# -match dict: the result is a dict of named findings, the expected one
# written a finding a line. They match when both hold the same keys, in
# the same order, each with the same value (compared as a string).
proc sstest::dictMatch {expected actual} {
    expr {![catch {dict size $actual}]
	    && [list {*}$expected] eq [list {*}$actual]}
}
customMatch dict sstest::dictMatch

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

# sstest::connect, sstest::finished, sstest::closeLater --
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

proc sstest::closeLater {socks} {
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

# ---------------------------------------------------------------------------
# Remote children (fault.test): a child tclsh that runs a server and forks
# its workers, so that a fault never touches the test process itself. It
# takes Tcl scripts on its stdin and answers each with {code result}.
# ---------------------------------------------------------------------------

namespace eval ::sstest {
    variable remotes {}		;# remote child's pipe -> its pid
    variable load
}

testConstraint python3 [expr {[auto_execok python3] ne ""}]

# sstest::fdLimit --
#	This process's hard limit on open descriptors (Linux), or 0.
proc sstest::fdLimit {} {
    if {[catch {open /proc/self/limits} f]} {
	return 0
    }
    set text [read $f]
    close $f
    if {[regexp -line {^Max open files\s+\S+\s+(\S+)} $text -> hard]} {
	return [expr {$hard eq "unlimited" ? 1048576 : $hard}]
    }
    return 0
}
testConstraint manyFds [expr {[sstest::fdLimit] >= 2048}]

# The remote child's line protocol, both ways: a script or a reply on one
# line, its backslashes and newlines escaped. Defined here and in the child.
set sstest::lineCodec {
    proc encode {s} {string map {\\ \\\\ \n \\n} $s}
    proc decode {s} {string map {\\n \n \\\\ \\} $s}
}
namespace eval ::sstest $sstest::lineCodec

# The child's program: evaluates each line of stdin (a script, newlines
# and backslashes escaped) at global level and answers {code result} on
# one line. remote::spawn forks a worker that runs a script and then the
# event loop; remote::report leaves a file the test reads.
set sstest::remoteBoot [string map [list @CODEC@ [list $sstest::lineCodec]] {
    package require socketserver 2
    package require Tclx
    namespace eval ::remote {
	variable workers {}
	variable reportDir [lindex $::argv 0]
    }
    namespace eval ::remote @CODEC@
    proc ::remote::command {} {
	if {[gets stdin line] < 0} {
	    if {[eof stdin]} {
		::remote::quit
	    }
	    return
	}
	set code [catch {uplevel #0 [decode $line]} result]
	puts stdout [encode [list $code $result]]
	flush stdout
    }
    proc ::remote::spawn {script} {
	flush stdout
	flush stderr
	set pid [fork]
	if {$pid == 0} {
	    fileevent stdin readable {}
	    foreach id [after info] {
		after cancel $id
	    }
	    set ::remote::workers {}
	    if {[catch {uplevel #0 $script} msg]} {
		catch {puts stderr "worker [pid]: $msg"}
		exit 1
	    }
	    after 60000 {exit 2}
	    vwait ::remote::forever
	    exit 0
	}
	lappend ::remote::workers $pid
	return $pid
    }
    proc ::remote::report {name value} {
	variable reportDir
	set f [file join $reportDir report-$name]
	set ch [open $f.[pid] w]
	puts -nonewline $ch $value
	close $ch
	file rename -force $f.[pid] $f
    }
    proc ::remote::quit {} {
	foreach pid $::remote::workers {
	    catch {kill SIGKILL $pid}
	    catch {wait $pid}
	}
	exit 0
    }
    # A handler: answers "pid ipaddr", closes, arms again. Errors writing
    # to a client that has gone are the client's, not the worker's.
    proc ::remote::echo {chan addr port} {
	catch {
	    puts $chan "[pid] $addr"
	    close $chan
	}
	::socketserver::socket client ::remote::echo
    }
    fconfigure stdout -buffering line
    fileevent stdin readable ::remote::command
    after 120000 ::remote::quit
    puts ready
    vwait ::remote::forever
}]


# sstest::remote --
#	Starts a child tclsh (its descriptor limit lowered or raised to
#	maxFds if given) running sstest::remoteBoot. Returns its pipe.
proc sstest::remote {{maxFds {}}} {
    variable remotes
    variable bootFile
    if {![info exists bootFile]} {
	set bootFile [makeFile $sstest::remoteBoot remote-boot.tcl]
    }
    set limit [expr {$maxFds eq "" ? "" : "ulimit -n $maxFds && "}]
    set r [open |[list sh -c "${limit}exec \"\$0\" \"\$@\"" \
	    [interpreter] $bootFile [temporaryDirectory] 2>@stderr] r+]
    fconfigure $r -buffering line -blocking 0
    dict set remotes $r [pid $r]
    set first [ReadReply $r 10000]
    if {$first ne "ready"} {
	error "remote tclsh did not start: $first"
    }
    return $r
}

proc sstest::ReadReply {r timeoutMs} {
    set ::sstest::reply ""
    fileevent $r readable [list apply {{r} {
	if {[gets $r line] >= 0} {
	    set ::sstest::reply $line
	} elseif {[eof $r]} {
	    set ::sstest::reply "remote eof"
	}
    }} $r]
    set line [sstest::vwaitFor sstest::reply $timeoutMs]
    fileevent $r readable {}
    return $line
}

# sstest::call --
#	Evaluates script in the remote child; returns its result, or raises
#	its error (or a timeout).
proc sstest::call {r script {timeoutMs 10000}} {
    puts $r [encode $script]
    set reply [ReadReply $r $timeoutMs]
    if {$reply in {timeout {remote eof}}} {
	error "remote: $reply"
    }
    lassign [decode $reply] code result
    if {$code} {
	error "remote: $result"
    }
    return $result
}

# sstest::rpid --
#	The remote child's process id.
proc sstest::rpid {r} {
    dict get $sstest::remotes $r
}

# sstest::stopRemote --
#	Kills the remote child and every worker it forked (they are not our
#	children: the child reaps them, or init does), and closes the pipe.
proc sstest::stopRemote {r} {
    variable remotes
    if {![dict exists $remotes $r]} {
	return
    }
    # Workers first: an armed worker that outlived its server would
    # report the loss on stderr.
    set pids {}
    catch {set pids [call $r {set ::remote::workers} 2000]}
    lappend pids [dict get $remotes $r]
    foreach pid $pids {
	catch {::kill SIGKILL $pid}
    }
    catch {close $r}
    dict unset remotes $r
}

proc sstest::stopAllRemotes {} {
    variable remotes
    foreach r [dict keys $remotes] {
	stopRemote $r
    }
}

# sstest::rinfo --
#	A field of `info` in the remote child (the first server there).
proc sstest::rinfo {r key} {
    dict get [call $r {::socketserver::socket info}] $key
}

# sstest::rcounts --
#	The named fields of `info` in the remote child, as a dict in that
#	order.
proc sstest::rcounts {r args} {
    Fields [call $r {::socketserver::socket info}] $args
}

# sstest::figures --
#	With FAULTTEST_FIGURES set in the environment, prints what a test
#	measured (for doc/RELIABILITY.md); otherwise does nothing.
proc sstest::figures {test figures} {
    if {[info exists ::env(FAULTTEST_FIGURES)]} {
	puts [outputChannel] "$test: $figures"
    }
}

# sstest::measureFor --
#	Runs the event loop for ms milliseconds: a measuring window (CPU
#	time, failure counts), not a wait for something to happen.
proc sstest::measureFor {ms} {
    set ::sstest::window 0
    after $ms {set ::sstest::window 1}
    vwait ::sstest::window
}

# sstest::cpuTicks --
#	User plus system CPU time of a process so far, in clock ticks
#	(1/100 s on Linux), from /proc/PID/stat.
proc sstest::cpuTicks {pid} {
    set f [open /proc/$pid/stat]
    set stat [read $f]
    close $f
    set fields [string range $stat [string last ")" $stat]+2 end]
    expr {[lindex $fields 11] + [lindex $fields 12]}
}

# sstest::gone --
#	Whether process pid has ended, reaped or a zombie (it need not be our
#	child; /proc says, through sstest::procState below).
proc sstest::gone {pid} {
    set state [procState $pid]
    expr {$state eq "" || [lindex $state 0] eq "Z"}
}

# sstest::load --
#	Makes total connections to 127.0.0.1:port, concurrency at a time,
#	from this process's event loop; each client sends nothing and reads
#	to the end. Returns a dict: answered (got one line "pid 127.0.0.1"),
#	bad (got something else), eof (closed with no line), reset (read
#	error), failed (could not connect), unfinished (still open after
#	timeoutMs), and pids: how many answers each pid gave.
proc sstest::load {port total concurrency {timeoutMs 30000}} {
    variable load
    array unset load
    array set load [list port $port total $total started 0 finished 0 \
	    answered 0 eof 0 reset 0 failed 0 bad 0 pids {} socks {}]
    set ::sstest::loadDone 0
    for {set i 0} {$i < $concurrency} {incr i} {
	LoadConnect
    }
    if {$total > 0} {
	sstest::vwaitFor sstest::loadDone $timeoutMs
    }
    foreach s [dict keys $load(socks)] {
	catch {close $s}
    }
    set result {}
    foreach key {answered eof reset failed bad} {
	dict set result $key $load($key)
    }
    dict set result unfinished [expr {$total - $load(finished)}]
    dict set result pids [lsort -stride 2 -integer -index 0 $load(pids)]
    return $result
}

proc sstest::LoadConnect {} {
    variable load
    if {$load(started) >= $load(total)} {
	return
    }
    incr load(started)
    if {[catch {socket -async 127.0.0.1 $load(port)} s]} {
	LoadDone failed
	return
    }
    dict set load(socks) $s {}
    fconfigure $s -blocking 0 -buffering line
    fileevent $s readable [list sstest::LoadRead $s]
}

proc sstest::LoadRead {s} {
    variable load
    if {[fconfigure $s -error] eq "connection refused"} {
	set how failed
    } elseif {[catch {gets $s line} n]} {
	set how reset
    } elseif {$n >= 0} {
	dict lappend load(socks) $s $line
	return
    } elseif {![eof $s]} {
	return
    } else {
	set lines [dict get $load(socks) $s]
	if {[llength $lines] == 0} {
	    set how eof
	} elseif {[llength $lines] == 1
		&& [regexp {^(\d+) 127\.0\.0\.1$} [lindex $lines 0] -> pid]} {
	    dict incr load(pids) $pid
	    set how answered
	} else {
	    set how bad
	}
    }
    catch {close $s}
    dict unset load(socks) $s
    LoadDone $how
}

proc sstest::LoadDone {how} {
    variable load
    incr load($how)
    if {[incr load(finished)] >= $load(total)} {
	set ::sstest::loadDone 1
    } else {
	LoadConnect
    }
}

# sstest::settle --
#	Waits until remote child r's server is at rest: n workers armed,
#	nothing pending, every accepted connection acknowledged. Returns 1,
#	or 0 after timeoutMs.
proc sstest::settle {r n {timeoutMs 10000}} {
    sstest::waitUntil "\[sstest::AtRest $r $n\]" $timeoutMs
}

proc sstest::AtRest {r n} {
    set i [call $r {::socketserver::socket info}]
    expr {[dict get $i ready] == $n && [dict get $i pending] == 0
	    && [dict get $i acked] == [dict get $i accepted]}
}

# sstest::countOf --
#	How many answers pid gave, from load's pids dict.
proc sstest::countOf {perPid pid} {
    expr {[dict exists $perPid $pid] ? [dict get $perPid $pid] : 0}
}

# sstest::spawnEchoWorkers --
#	Forks n echo workers in remote child r; returns their pids.
proc sstest::spawnEchoWorkers {r n} {
    set pids {}
    for {set i 0} {$i < $n} {incr i} {
	lappend pids [call $r {
	    ::remote::spawn {::socketserver::socket client ::remote::echo}
	}]
    }
    return $pids
}

# sstest::firstLine --
#	One client: connect, read the first line ("eof"/"timeout").
proc sstest::firstLine {port {timeoutMs 10000}} {
    sstest::fetch $port 127.0.0.1 "" $timeoutMs
}

# ---------------------------------------------------------------------------
# Spawn-mode pools (prefork_spawn.test): pools in this process (-signals 0)
# whose workers are new tclsh processes joining through the control socket,
# pools in a process of their own (the driver below) controlled over its
# stdin and stdout, and what /proc says of their processes.
# ---------------------------------------------------------------------------

namespace eval ::sstest {
    variable logged {}		;# what sstest::collectLog collected
    variable askSeq 0
    variable poolSeq 0

    # The workers' code, given as -init: a spawned worker knows nothing
    # else. The handler reads one line: "hang" and "slow MS" answer
    # "pid PID" first; "noise" writes to stdout; "fail" and "exit"
    # misbehave; "env" answers what the worker was given, "version" the
    # ::version its -init set. Otherwise the answer is "ok PID ADDRESS".
    variable poolInit {
	proc answer {chan addr port} {
	    chan configure $chan -translation lf -buffering line
	    gets $chan line
	    switch -- [lindex $line 0] {
		hang {
		    puts $chan "pid [pid]"
		    after 600000
		}
		slow {
		    puts $chan "pid [pid]"
		    after [lindex $line 1]
		}
		noise {
		    puts -nonewline stdout "noise from [pid]"
		    puts stdout " and more"
		}
		fail {
		    error "asked to fail"
		}
		exit {
		    exit 5
		}
		version {
		    puts $chan [list ok [pid] $::version]
		    close $chan
		    return
		}
		env {
		    set v [package present socketserver]
		    puts $chan [list [pid] $v \
			    [lindex [package ifneeded socketserver $v] end] \
			    $::argv0 $::argv $::socketserver::prefork::graceMs \
			    [expr {![catch {package present Tclx}]}]]
		    close $chan
		    return
		}
	    }
	    puts $chan "ok [pid] $addr"
	    close $chan
	}
    }

    # The program of sstest::poolProcess (written to a file on first use).
    variable poolDriverScript {
	# A spawn-mode pool in its own process. argv: pool options. stdin:
	# scripts to evaluate, one per line; stdout: "ready INFO TCLX",
	# then one line {code result} per script. End of file on stdin:
	# hard stop, exit.
	package require socketserver 2

	proc control {} {
	    if {[gets stdin line] < 0} {
		if {[eof stdin]} {
		    catch {$::pool stop -graceful 0}
		    exit 0
		}
		return
	    }
	    set code [catch {uplevel #0 $line} result]
	    puts [list $code $result]
	}

	chan configure stdout -buffering line
	set pool [::socketserver::prefork -spawn 1 -myaddr 127.0.0.1 \
		-handler answer {*}$argv]
	puts [list ready [$pool info] [expr {![catch {package present Tclx}]}]]
	chan configure stdin -blocking 0 -buffering line
	chan event stdin readable control
	vwait forever
    }
}

# sstest::collectLog --
#	A -log prefix for pools in this process: collects {level message}.

proc sstest::collectLog {level message} {
    lappend ::sstest::logged [list $level $message]
}

proc sstest::logMatching {pattern} {
    set found {}
    foreach entry $::sstest::logged {
	if {[string match $pattern [lindex $entry 1]]} {
	    lappend found $entry
	}
    }
    return $found
}

# sstest::spawnPool --
#	A spawn-mode pool in this process, its workers defined by
#	::sstest::poolInit; waits until every worker is ready. Returns the pool.

proc sstest::spawnPool {args} {
    set ::sstest::logged {}
    set pool [::socketserver::prefork -spawn 1 -signals 0 -myaddr 127.0.0.1 \
	    -log sstest::collectLog -init $::sstest::poolInit \
	    -handler answer {*}$args]
    if {[catch {
	sstest::waitOrFail "\[sstest::allReady $pool\]"
    } msg opts]} {
	$pool destroy
	return -options $opts $msg
    }
    return $pool
}

proc sstest::allReady {pool} {
    set i [$pool info]
    expr {[llength [dict get $i pids]] == [dict get $i workers]
	    && ![llength [dict get $i starting]]}
}

# sstest::waitOrFail --
#	sstest::waitUntil that fails the test (an error) on timeout.

proc sstest::waitOrFail {cond {timeoutMs 10000}} {
    if {![sstest::waitUntil $cond $timeoutMs]} {
	error "timed out after $timeoutMs ms waiting for: $cond"
    }
}

# sstest::ask --
#	One request to a pool: sends line, returns every line of the answer
#	until end of file ("timeout" appended if it does not come).

proc sstest::ask {port {line hello} {timeoutMs 10000}} {
    set s [socket 127.0.0.1 $port]
    chan configure $s -buffering line -blocking 0 -translation lf
    puts $s $line
    set key ::sstest::ask[incr ::sstest::askSeq]
    set $key {}
    set ${key}done 0
    chan event $s readable [list apply {{s key} {
	while {![catch {gets $s l} n] && $n >= 0} {
	    lappend $key $l
	}
	if {[catch {eof $s} eof] || $eof} {
	    set ${key}done 1
	}
    }} $s $key]
    set done [sstest::vwaitFor [string range $key 2 end]done $timeoutMs]
    close $s
    set result [set $key]
    unset $key ${key}done
    if {$done eq "timeout"} {
	lappend result timeout
    }
    return $result
}

# sstest::procState --
#	{STATE PPID} of a process from /proc/PID/stat, or {} once it is gone
#	(reaped). STATE Z: a zombie, dead but not reaped.

proc sstest::procState {pid} {
    if {[catch {
	set f [open /proc/$pid/stat]
	set text [read $f]
	close $f
    }]} {
	return {}
    }
    lrange [string range $text [string last ")" $text]+2 end] 0 1
}

# sstest::running --
#	1 while the process exists and is not a zombie.

proc sstest::running {pid} {
    set s [sstest::procState $pid]
    expr {[llength $s] && [lindex $s 0] ni {Z X}}
}

# sstest::onlyWorkers --
#	1 if, of the given processes, those that exist (zombies included)
#	are exactly the pool's workers.

proc sstest::onlyWorkers {pool pids} {
    set workers [dict get [$pool info] pids]
    foreach pid $pids {
	if {([llength [sstest::procState $pid]] > 0) != ($pid in $workers)} {
	    return 0
	}
    }
    return 1
}

# sstest::zombies --
#	The children of this process that are zombies.

proc sstest::zombies {} {
    set found {}
    foreach dir [glob -nocomplain -directory /proc {[0-9]*}] {
	set pid [file tail $dir]
	lassign [sstest::procState $pid] state ppid
	if {$ppid == [pid] && $state eq "Z"} {
	    lappend found $pid
	}
    }
    return $found
}

# sstest::killLeft --
#	For -cleanup: kills whatever is left of the given processes.

proc sstest::killLeft {pids} {
    foreach pid $pids {
	if {[sstest::running $pid]} {
	    catch {exec kill -KILL $pid}
	}
    }
}

# ---------------------------------------------------------------------
# Pools in a process of their own.
# ---------------------------------------------------------------------

# sstest::poolProcess --
#	Starts the driver with pool options; waits for its first line.
#	Returns a handle: dict chan pid port log tclx.

proc sstest::poolProcess {args} {
    variable poolDriver
    variable poolDriverScript
    if {![info exists poolDriver]} {
	set poolDriver [makeFile $poolDriverScript pool-driver.tcl]
    }
    set log [makeFile {} prefork_spawn[incr ::sstest::poolSeq].log]
    set chan [open |[list [info nameofexecutable] $poolDriver {*}$args \
	    2> $log] r+]
    chan configure $chan -buffering line -blocking 0
    set ::sstest::poolLines($chan) {}
    set ::sstest::poolEof($chan) 0
    chan event $chan readable [list apply {{chan} {
	while {![catch {gets $chan line} n] && $n >= 0} {
	    lappend ::sstest::poolLines($chan) $line
	}
	if {[catch {eof $chan} eof] || $eof} {
	    chan event $chan readable {}
	    set ::sstest::poolEof($chan) 1
	}
    }} $chan]
    set h [dict create chan $chan pid [pid $chan] log $log port 0]
    set first [sstest::nextLine $h]
    if {[lindex $first 0] ne "ready"} {
	sstest::finishPool $h
	error "the pool did not start: $first [sstest::logText $h]"
    }
    dict set h port [dict get [lindex $first 1] port]
    dict set h tclx [lindex $first 2]
    return $h
}

proc sstest::nextLine {h {timeoutMs 10000}} {
    set chan [dict get $h chan]
    if {![sstest::waitUntil "\[llength \$::sstest::poolLines($chan)\]
	    || \$::sstest::poolEof($chan)" $timeoutMs]} {
	return timeout
    }
    if {![llength $::sstest::poolLines($chan)]} {
	return eof
    }
    set line [lindex $::sstest::poolLines($chan) 0]
    set ::sstest::poolLines($chan) \
	    [lrange $::sstest::poolLines($chan) 1 end]
    return $line
}

# sstest::control --
#	Evaluates script in the pool's process; returns its result.

proc sstest::control {h script} {
    puts [dict get $h chan] $script
    set answer [sstest::nextLine $h]
    if {[llength $answer] != 2} {
	error "no answer from the pool: $answer"
    }
    lassign $answer code result
    if {$code} {
	error $result
    }
    return $result
}

# sstest::waitInfo --
#	Polls the pool's info until expr (with $i the info dict) holds.
#	Returns the info; an error on timeout.

proc sstest::waitInfo {h expr {timeoutMs 10000}} {
    set deadline [expr {[clock milliseconds] + $timeoutMs}]
    while 1 {
	set i [sstest::control $h {$pool info}]
	if $expr {
	    return $i
	}
	if {[clock milliseconds] > $deadline} {
	    error "timed out waiting for the pool: $expr; info: $i"
	}
	sstest::waitUntil 0 50
    }
}

# sstest::exited --
#	Waits for the pool's process to end and reaps it. Returns its exit
#	status ("killed" for a signal), or "timeout".

proc sstest::exited {h {timeoutMs 10000}} {
    set chan [dict get $h chan]
    if {![sstest::waitUntil "\$::sstest::poolEof($chan)" $timeoutMs]} {
	return timeout
    }
    chan configure $chan -blocking 1
    set status 0
    if {[catch {close $chan} msg opts]} {
	set code [dict get $opts -errorcode]
	switch -- [lindex $code 0] {
	    CHILDSTATUS {set status [lindex $code 2]}
	    CHILDKILLED {set status killed}
	    default {set status $code}
	}
    }
    unset -nocomplain ::sstest::poolLines($chan) ::sstest::poolEof($chan)
    return $status
}

# sstest::finishPool --
#	Cleanup: end of file on the pool's stdin makes it stop hard and
#	exit; if it does not, kill it and the given workers.

proc sstest::finishPool {h {pids {}}} {
    set chan [dict get $h chan]
    if {$chan ni [chan names]} {
	sstest::killLeft $pids
	return
    }
    catch {close $chan write}
    if {[sstest::exited $h] eq "timeout"} {
	catch {exec kill -KILL [dict get $h pid]}
	sstest::exited $h 5000
    }
    sstest::killLeft $pids
}

proc sstest::logText {h} {
    set f [open [dict get $h log]]
    set text [read $f]
    close $f
    return $text
}

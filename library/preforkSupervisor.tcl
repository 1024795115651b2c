# preforkSupervisor.tcl --
#
#	The supervisor: one Pool object per pool, which starts, watches,
#	replaces, retires and stops the workers.
#
#	Graceful stop, and why in this order (the pool owns the server):
#	  1. Close the listener at once. New connections are refused. Every
#	     connection the dispatcher accepted is already in a worker's
#	     hands or queued on a worker's private channel, and is served.
#	     A connection the kernel had completed but nobody had accepted
#	     yet (it waits in the listen backlog only while every worker is
#	     busy) is reset by the kernel: TCP cannot close a listener and
#	     keep its backlog, and waiting does not help under steady load,
#	     as new connections keep arriving; a load balancer in front, or
#	     the client's retry, covers it, as with every prefork server.
#	  2. Tell every worker "drain": each finishes what it holds, takes
#	     what was queued to it (it comes before the end of file on its
#	     channel), does not re-arm, and exits.
#	  3. Workers still alive after the stop -timeout are killed.
#	With a server the pool did not create, it is left listening, and the
#	workers are told to "retire" instead: the dispatcher, still running,
#	re-sends anything a leaving worker had not yet received.

namespace eval ::socketserver::prefork {

if {![llength [info commands Pool]]} {
    oo::class create Pool
}
oo::define Pool {
    variable cfg name owner port owned closed state target generation \
	    restarts requests workers timers failures nextStart stopWhy \
	    tickMs spawn ctlPath ctlTemp

    # workers: pid -> dict
    #	chan	 read end of its status pipe ("" after end of file; spawn
    #		 mode: the worker's channel, "" once closed, i.e. reaped)
    #	ctl	 write end of its control pipe (spawn mode: chan)
    #	eof	 spawn mode: 1 once its stdout has reached end of file
    #	gen	 generation (bumped by SIGHUP)
    #	state	 starting | ready | retiring
    #	busy	 1 while its handler runs; busySince: when it started
    #	served	 connections finished
    #	started	 fork time (ms); asked: why we asked it to go, or ""

    constructor {options} {
	namespace path [list {*}[namespace path] ::socketserver::prefork]
	set cfg $options
	set name [self]
	set owner [pid]
	set workers [dict create]
	set timers [dict create]
	set generation 0
	set restarts 0
	set requests 0
	set failures 0
	set nextStart 0
	set stopWhy ""
	set closed 0
	set target [dict get $cfg -workers]
	set tickMs $::socketserver::prefork::tickMs
	set timeout [dict get $cfg -timeout]
	if {$timeout > 0} {
	    set tickMs [expr {max(20, min($tickMs, int($timeout * 250)))}]
	}

	set spawn [dict get $cfg -spawn]
	set ctlPath [dict get $cfg -control]
	set ctlTemp 0
	set wanted [dict get $cfg -port]
	if {$wanted != 0
		&& ![catch {::socketserver::socket info $wanted} serverInfo]} {
	    # Spawned workers join through the server's control socket.
	    set path ""
	    if {[dict exists $serverInfo control]} {
		set path [dict get $serverInfo control]
	    }
	    if {$spawn && $path eq ""} {
		return -code error -errorcode {SOCKETSERVER POOL NOCONTROL} \
			"can't spawn workers: the server on port $wanted has\
			no control socket (server -control)"
	    }
	    if {$ctlPath ne "" && $ctlPath ne $path} {
		return -code error -errorcode {SOCKETSERVER POOL NOCONTROL} \
			"the server on port $wanted has no control socket at\
			\"$ctlPath\""
	    }
	    set ctlPath $path
	    set port $wanted
	    set owned 0
	} else {
	    set serverArgs {}
	    foreach opt {-myaddr -backlog} {
		if {[dict get $cfg $opt] ne ""} {
		    lappend serverArgs $opt [dict get $cfg $opt]
		}
	    }
	    if {$spawn && $ctlPath eq ""} {
		set ctlPath [TempControlPath]
		set ctlTemp 1
	    }
	    if {$ctlPath ne ""} {
		lappend serverArgs -control $ctlPath
	    }
	    set port [::socketserver::socket server {*}$serverArgs $wanted]
	    set owned 1
	}
	set state running
	lappend ::socketserver::prefork::pools [self]
	if {[dict get $cfg -signals]} {
	    RegisterSignals [self]
	    if {![catch OtherThreadsTakeSignals exposed] && $exposed} {
		my Log warning "another thread of this process can take\
			[join [TrappedSignals]] (the event loop\
			ran before the pool was created): with Tcl 8.6 such a\
			signal can deadlock the process; create the pool first"
	    }
	}
	my Log info "pool on port $port: starting $target workers"
	my Balance
	my Timer tick $tickMs Tick
    }

    destructor {
	if {![info exists state] || [pid] != $owner} {
	    return		;# A worker's copy, or a failed constructor.
	}
	if {$state ne "stopped"} {
	    set cfg [dict replace $cfg -onexit ""]
	    my Stop 0 0 destroy
	}
	my Finalize
    }

    # -----------------------------------------------------------------
    # Public methods.
    # -----------------------------------------------------------------

    method workers {{count ""}} {
	my CheckOwner
	if {$count eq ""} {
	    return $target
	}
	CheckInt workers $count 1
	if {$state ne "running"} {
	    return -code error -errorcode {SOCKETSERVER POOL STATE} \
		    "can't change the number of workers: the pool is $state"
	}
	if {$count != $target} {
	    my Log info "number of workers: $target -> $count"
	    set target [expr {$count}]
	    my Balance
	}
	return $target
    }

    method info {} {
	my CheckOwner
	set pids {}
	set starting {}
	set retiring {}
	set served [dict create]
	set total $requests
	foreach pid [my ByAge] {
	    set w [dict get $workers $pid]
	    switch -- [dict get $w state] {
		retiring {lappend retiring $pid}
		starting {lappend pids $pid; lappend starting $pid}
		default {lappend pids $pid}
	    }
	    dict set served $pid [dict get $w served]
	    incr total [dict get $w served]
	}
	dict create port $port state $state workers $target pids $pids \
		served $served restarts $restarts starting $starting \
		retiring $retiring generation $generation requests $total \
		pid $owner
    }

    method stop {args} {
	my CheckOwner
	set opts [ParseOptions {-graceful 1 -timeout 30} $args]
	set graceful [dict get $opts -graceful]
	if {![string is boolean -strict $graceful]} {
	    return -code error -errorcode {TCL VALUE NUMBER} \
		    "expected boolean value but got \"$graceful\""
	}
	set graceful [string is true $graceful]
	set timeout [dict get $opts -timeout]
	CheckNumber timeout $timeout
	my Stop $graceful $timeout stop
	return
    }

    # -----------------------------------------------------------------
    # Internals.
    # -----------------------------------------------------------------

    method CheckOwner {} {
	if {[pid] != $owner} {
	    return -code error -errorcode {SOCKETSERVER POOL WORKER} \
		    "pool $name belongs to process $owner"
	}
    }

    method Log {level message} {
	Log [dict get $cfg -log] $level $message
    }

    # Named timers: one pending event per name; all cancelled together.
    method Timer {key ms args} {
	if {[dict exists $timers $key]} {
	    after cancel [dict get $timers $key]
	}
	dict set timers $key [after $ms [list [namespace which my] \
		TimerFired $key {*}$args]]
    }

    method TimerFired {key args} {
	dict unset timers $key
	my {*}$args
    }

    method CancelTimers {} {
	foreach id [dict values $timers] {
	    after cancel $id
	}
	set timers [dict create]
    }

    method ByAge {} {
	lsort -command [list apply {{workers a b} {
	    expr {[dict get $workers $a started] - [dict get $workers $b started]}
	}} $workers] [dict keys $workers]
    }

    # Spawn --
    #	Forks one worker of the current generation, with its status pipe
    #	(worker to supervisor) and control pipe (supervisor to worker),
    #	or spawns it (SpawnProcess). Returns the pid.
    method Spawn {} {
	if {$spawn} {
	    return [my SpawnProcess]
	}
	catch {flush stdout}
	catch {flush stderr}
	lassign [chan pipe] statusIn statusOut
	lassign [chan pipe] controlIn controlOut
	if {[catch {::fork} pid opts]} {
	    close $statusIn
	    close $statusOut
	    close $controlIn
	    close $controlOut
	    return -options $opts $pid
	}
	if {$pid == 0} {
	    close $statusIn
	    close $controlOut
	    BecomeWorker $statusOut $controlIn [my WorkerConfig]
	    # Not reached: BecomeWorker exits.
	}
	close $statusOut
	close $controlIn
	chan configure $statusIn -blocking 0 -buffering line -translation lf \
		-encoding utf-8
	chan configure $controlOut -blocking 1 -buffering line -translation lf \
		-encoding utf-8
	my Started $pid $statusIn $controlOut
	return $pid
    }

    # SpawnProcess --
    #	Spawn mode: starts `tclsh` (-tclsh) with a pipe on its stdin and
    #	stdout, its stderr the supervisor's, and writes it the bootstrap
    #	and its configuration. Returns the pid.
    method SpawnProcess {} {
	set command [list [dict get $cfg -tclsh]]
	if {[llength [chan names stderr]]} {
	    lappend command 2>@ stderr
	} else {
	    lappend command 2> [expr {$::tcl_platform(platform) eq "windows"
		    ? "NUL" : "/dev/null"}]
	}
	set chan [open |$command r+]
	set pid [pid $chan]
	chan configure $chan -blocking 0 -buffering full -translation lf \
		-encoding utf-8
	if {[catch {
	    puts $chan $::socketserver::prefork::bootstrap
	    puts $chan [EncodeLine [my WorkerConfig]]
	    flush $chan
	} msg opts]} {
	    KillProcesses $pid
	    chan configure $chan -blocking 1
	    catch {close $chan}
	    return -options $opts $msg
	}
	chan configure $chan -buffering line
	my Started $pid $chan $chan
	return $pid
    }

    # WorkerConfig --
    #	What a worker needs to know (BecomeWorker, SpawnedWorker). A
    #	forked worker inherits the rest; a spawned one is told where this
    #	package and the supervisor's packages are, the tunables, and the
    #	supervisor's argv0 and argv.
    method WorkerConfig {} {
	set config [dict create handler [dict get $cfg -handler] \
		init [dict get $cfg -init] \
		maxrequests [dict get $cfg -maxrequests] \
		concurrency [dict get $cfg -concurrency] \
		log [dict get $cfg -log] spawned $spawn]
	if {!$spawn} {
	    dict set config target [list -port $port]
	    return $config
	}
	if {[catch {package present socketserver} version]} {
	    set version ""
	}
	set ns ::socketserver::prefork
	dict set config target [list -connect $ctlPath]
	dict set config version $version
	dict set config path [list [set ${ns}::libdir] {*}$::auto_path]
	dict set config tm [tcl::tm::path list]
	dict set config graceMs [set ${ns}::graceMs]
	dict set config drainFallbackMs [set ${ns}::drainFallbackMs]
	dict set config argv0 [expr {[info exists ::argv0] ? $::argv0 : ""}]
	dict set config argv [expr {[info exists ::argv] ? $::argv : {}}]
	dict set config signals [expr {[dict get $cfg -signals]
		&& $::tcl_platform(platform) eq "unix"}]
	return $config
    }

    # Started --
    #	Enters a new worker in the table and listens to its status lines.
    method Started {pid statusChan controlChan} {
	chan event $statusChan readable \
		[list [namespace which my] StatusReadable $pid]
	dict set workers $pid [dict create chan $statusChan ctl $controlChan \
		eof 0 gen $generation state starting busy 0 busySince 0 \
		served 0 started [clock milliseconds] asked ""]
	my Log info "worker $pid [expr {$spawn ? "spawned" : "started"}]\
		(generation $generation)"
    }

    # Kill --
    #	SIGKILL to workers: Tclx in fork mode, KillProcesses when spawned.
    method Kill {pids} {
	if {$spawn} {
	    KillProcesses $pids
	    return
	}
	foreach pid $pids {
	    catch {::kill SIGKILL $pid}
	}
    }

    # Tell --
    #	One line on a worker's control pipe; a worker already gone is
    #	ignored (its end of file is on its way).
    method Tell {pid message} {
	if {[dict exists $workers $pid]} {
	    catch {puts [dict get $workers $pid ctl] $message}
	}
    }

    # Forget --
    #	In a freshly forked worker: drops the supervisor's pipes and
    #	timers, which belong to the parent.
    method Forget {} {
	dict for {pid w} $workers {
	    if {[dict get $w chan] ne ""} {
		catch {close [dict get $w chan]}
	    }
	    if {[dict get $w ctl] ne [dict get $w chan]} {
		catch {close [dict get $w ctl]}
	    }
	}
	set workers [dict create]
	set timers [dict create]
    }

    method StatusReadable {pid} {
	if {![dict exists $workers $pid]} {
	    return
	}
	set chan [dict get $workers $pid chan]
	while {[dict exists $workers $pid]
		&& ![catch {gets $chan line} n] && $n >= 0} {
	    my Status $pid $line
	}
	if {[dict exists $workers $pid] && ([catch {eof $chan} eof] || $eof)} {
	    if {$spawn} {
		# Closing the channel reaps: done once the process is gone.
		chan event $chan readable {}
		dict set workers $pid eof 1
	    } else {
		catch {close $chan}
		dict set workers $pid chan ""
	    }
	    my ReapSoon $pid 1
	}
    }

    method Status {pid line} {
	if {[catch {lindex $line 0} what]} {
	    return
	}
	set w [dict get $workers $pid]
	switch -- $what {
	    ready {
		if {[dict get $w state] eq "starting"} {
		    dict set workers $pid state ready
		}
		my Balance
	    }
	    busy {
		dict set workers $pid busy 1
		dict set workers $pid busySince [clock milliseconds]
	    }
	    done {
		dict set workers $pid busy 0
		dict set workers $pid served [lindex $line 1]
	    }
	    hold {
		lassign $line - held since served
		dict set workers $pid busy [expr {$held > 0}]
		dict set workers $pid busySince $since
		dict set workers $pid served $served
	    }
	    retiring {
		if {[dict get $w state] ne "retiring"} {
		    dict set workers $pid state retiring
		    set why [lindex $line 1]
		    if {$state eq "running" && [dict get $w asked] eq ""} {
			if {$why eq "maxrequests"} {
			    # -concurrency: it took them, not all closed yet.
			    set n [lindex $line 2]
			    if {$n eq ""} {
				set n [dict get $workers $pid served]
			    }
			    my Log info "worker $pid retires after $n\
				    connections (-maxrequests)"
			} else {
			    my Log warning "worker $pid retires ($why)"
			}
			incr restarts
		    }
		    my Balance
		}
	    }
	    log {
		my Log [lindex $line 1] "worker $pid: [Decode [lindex $line 2]]"
	    }
	}
    }

    # Reap --
    #	wait -nohang on one worker. Returns 1 if it was gone (and handled).
    method Reap {pid} {
	if {![dict exists $workers $pid]} {
	    return 1
	}
	if {$spawn} {
	    if {![ProcessExited $pid [dict get $workers $pid eof]]} {
		return 0
	    }
	    my CloseWorker $pid
	    return 1
	}
	if {[catch {::wait -nohang $pid} result]} {
	    set result [list $pid EXIT unknown]	;# Reaped by someone else.
	}
	if {[llength $result] < 3} {
	    return 0
	}
	my Gone $pid [lindex $result 1] [lindex $result 2]
	return 1
    }

    # CloseWorker --
    #	Spawn mode: reads the last status lines of a worker that has exited
    #	(or been killed), closes its channel, which reaps the process and
    #	returns its exit status, and accounts for it (Gone).
    method CloseWorker {pid} {
	set chan [dict get $workers $pid chan]
	while {[dict exists $workers $pid]
		&& ![catch {gets $chan line} n] && $n >= 0} {
	    my Status $pid $line
	}
	catch {chan event $chan readable {}}
	catch {chan configure $chan -blocking 1}
	set how EXIT
	set code 0
	if {[catch {close $chan} msg opts]} {
	    set errorCode [dict get $opts -errorcode]
	    switch -- [lindex $errorCode 0] {
		CHILDSTATUS {
		    set code [lindex $errorCode 2]
		}
		CHILDKILLED {
		    set how SIG
		    set code [lindex $errorCode 2]
		}
		default {
		    set code unknown
		}
	    }
	}
	dict set workers $pid chan ""
	dict set workers $pid ctl ""
	my Gone $pid $how $code
    }

    # ReapSoon --
    #	After a worker's pipe reached end of file, the process is about to
    #	be a zombie: retry a few times, quickly, then leave it to the tick.
    method ReapSoon {pid delay} {
	if {![my Reap $pid] && $delay < 200} {
	    my Timer reap,$pid $delay ReapSoon $pid [expr {$delay * 2}]
	}
    }

    # Gone --
    #	A worker has been reaped: account for it, log why, and replace it
    #	(with a growing delay when workers keep failing young).
    method Gone {pid how code} {
	set w [dict get $workers $pid]
	if {[dict get $w chan] ne ""} {
	    set chan [dict get $w chan]
	    while {![catch {gets $chan line} n] && $n >= 0} {
		my Status $pid $line
	    }
	    catch {close $chan}
	    set w [dict get $workers $pid]
	}
	catch {close [dict get $w ctl]}
	if {[dict exists $timers reap,$pid]} {
	    after cancel [dict get $timers reap,$pid]
	    dict unset timers reap,$pid
	}
	dict unset workers $pid
	incr requests [dict get $w served]
	set age [expr {[clock milliseconds] - [dict get $w started]}]
	set served [dict get $w served]
	set asked [dict get $w asked]
	if {$how eq "EXIT"} {
	    set what "exited with status $code"
	    set clean [expr {$code eq "0"}]
	} else {
	    set what "was killed by $code"
	    set clean 0
	}
	if {$asked eq "timeout"} {
	    if {$state eq "running"} {
		incr restarts
	    }
	    my Log warning "worker $pid $what (-timeout); served $served"
	} elseif {[dict get $w state] eq "retiring" || $asked ne ""} {
	    my Log [expr {$clean || $asked eq "hard" ? "info" : "warning"}] \
		    "worker $pid $what; served $served"
	} else {
	    switch -- $code {
		3 {append what " (-init failed)"}
		4 {append what " (could not take connections)"}
	    }
	    if {[dict get $w busy]} {
		append what ", with a connection in its hands"
	    }
	    if {$state eq "running"} {
		incr restarts
	    }
	    if {[dict get $w state] eq "starting"
		    || $age < $::socketserver::prefork::quickMs} {
		incr failures
		set delay [expr {min($::socketserver::prefork::backoffMaxMs,
			$::socketserver::prefork::backoffMs
			* (1 << min($failures - 1, 20)))}]
		set nextStart [expr {[clock milliseconds] + $delay}]
		my Log warning "worker $pid $what after $age ms;\
			$failures failure(s) in a row:\
			next worker in [format %.1f [expr {$delay / 1000.0}]] s"
	    } else {
		set failures 0
		my Log warning "worker $pid $what; served $served;\
			starting a new one"
	    }
	}
	my Balance
	my CheckStopped
    }

    # Balance --
    #	Brings the pool to its target: starts missing workers of the
    #	current generation (one at a time, and after the backoff delay,
    #	while workers keep failing), retires extra ones, and retires the
    #	older generation as the new one becomes ready.
    method Balance {} {
	if {$state ne "running"} {
	    return
	}
	set current {}
	set old {}
	set ready 0
	set starting 0
	foreach pid [my ByAge] {
	    set w [dict get $workers $pid]
	    if {[dict get $w state] eq "retiring"} {
		continue
	    }
	    if {[dict get $w gen] == $generation} {
		lappend current $pid
		if {[dict get $w state] eq "ready"} {
		    incr ready
		} else {
		    incr starting
		}
	    } else {
		lappend old $pid
	    }
	}
	set missing [expr {$target - [llength $current]}]
	if {$missing > 0} {
	    set wait [expr {$nextStart - [clock milliseconds]}]
	    if {$wait > 0} {
		my Timer spawn $wait Balance
	    } else {
		if {$failures > 0} {
		    # Probe with one worker until one gets going.
		    set missing [expr {$starting ? 0 : 1}]
		}
		for {set i 0} {$i < $missing} {incr i} {
		    if {[catch {my Spawn} err]} {
			incr failures
			set nextStart [expr {[clock milliseconds] + 1000}]
			my Log error "can't start a worker: $err; next try in 1 s"
			my Timer spawn 1000 Balance
			break
		    }
		}
	    }
	}
	if {$missing < 0} {
	    # Too many: retire the youngest, those not yet ready first.
	    set order [lsort -command [list apply {{workers a b} {
		set ka [expr {[dict get $workers $a state] eq "ready"}]
		set kb [expr {[dict get $workers $b state] eq "ready"}]
		incr ka [expr {2 * [dict get $workers $a busy]}]
		incr kb [expr {2 * [dict get $workers $b busy]}]
		if {$ka != $kb} {
		    return [expr {$ka - $kb}]
		}
		expr {[dict get $workers $b started] - [dict get $workers $a started]}
	    }} $workers] $current]
	    foreach pid [lrange $order 0 [expr {-$missing - 1}]] {
		my Retire $pid scale "the pool shrinks to $target"
	    }
	}
	# A rolling restart keeps old workers until new ones are ready.
	set keep [expr {max(0, $target - $ready)}]
	if {[llength $old] > $keep} {
	    set idleFirst [lsort -command [list apply {{workers a b} {
		expr {[dict get $workers $a busy] - [dict get $workers $b busy]}
	    }} $workers] $old]
	    foreach pid [lrange $idleFirst 0 end-$keep] {
		my Retire $pid reload "replaced by generation $generation"
	    }
	}
    }

    method Retire {pid why text} {
	my Log info "retiring worker $pid: $text"
	dict set workers $pid state retiring
	dict set workers $pid asked $why
	my Tell $pid retire
    }

    # Tick --
    #	Periodic: reaps, enforces -timeout, ends the failure streak once a
    #	worker has been up for a while, rebalances.
    method Tick {} {
	foreach pid [dict keys $workers] {
	    my Reap $pid
	}
	if {$state eq "stopped"} {
	    return
	}
	set now [clock milliseconds]
	set limit [expr {[dict get $cfg -timeout] * 1000.0}]
	dict for {pid w} $workers {
	    if {$limit > 0 && [dict get $w busy] && [dict get $w asked] ne "timeout"
		    && $now - [dict get $w busySince] > $limit} {
		my Log warning "worker $pid has been in one connection for more\
			than [dict get $cfg -timeout] s (-timeout): killing it"
		dict set workers $pid asked timeout
		my Kill [list $pid]
	    }
	    if {$failures && [dict get $w state] eq "ready"
		    && $now - [dict get $w started]
		    >= $::socketserver::prefork::quickMs} {
		set failures 0
	    }
	}
	my Balance
	my Timer tick $tickMs Tick
    }

    # Stop --
    #	Starts a graceful stop (or escalates one to a hard stop).
    method Stop {graceful timeout why} {
	switch -- $state {
	    stopped {
		return
	    }
	    stopping {
		if {!$graceful} {
		    my HardKill
		}
		return
	    }
	}
	set state stopping
	set stopWhy $why
	if {[dict exists $timers spawn]} {
	    after cancel [dict get $timers spawn]
	    dict unset timers spawn
	}
	if {!$graceful} {
	    my Log info "hard stop ($why)"
	    my HardKill
	    return
	}
	my Log info "graceful stop ($why): [dict size $workers] workers finish\
		what they hold; at most $timeout s"
	my Timer deadline [expr {max(0, int($timeout * 1000))}] Deadline
	if {$owned} {
	    my Drain
	} else {
	    my RetireAll retire
	}
    }

    # Drain --
    #	Graceful stop of an owned server: closes the listener, then tells
    #	every worker to drain (see the file's header).
    method Drain {} {
	my CloseServer
	my RetireAll drain
    }

    # RetireAll --
    #	Marks every worker as leaving because the pool stops, sends each the
    #	order (retire: finish the connection in hand; drain: also what is
    #	queued), and sees whether the pool has stopped already.
    method RetireAll {order} {
	dict for {pid w} $workers {
	    if {[dict get $w asked] eq ""} {
		dict set workers $pid asked stop
	    }
	    dict set workers $pid state retiring
	    my Tell $pid $order
	}
	my CheckStopped
    }

    method Deadline {} {
	if {[dict size $workers]} {
	    my Log warning "stop -timeout reached: killing\
		    [dict size $workers] workers"
	}
	my HardKill
    }

    method CloseServer {} {
	if {$owned && !$closed} {
	    set closed 1
	    catch {::socketserver::socket close $port}
	}
    }

    method HardKill {} {
	my CloseServer
	foreach pid [dict keys $workers] {
	    dict set workers $pid asked hard
	}
	my Kill [dict keys $workers]
	foreach pid [dict keys $workers] {
	    if {![dict exists $workers $pid]} {
		continue
	    }
	    if {$spawn} {
		my CloseWorker $pid	;# Blocking: waits for the process.
		continue
	    }
	    if {[catch {::wait $pid} result] || [llength $result] < 3} {
		set result [list $pid EXIT unknown]
	    }
	    my Gone $pid [lindex $result 1] [lindex $result 2]
	}
	my CheckStopped
    }

    # CheckStopped --
    #	When stopping and no worker is left: the pool is stopped. Calls
    #	-onexit; a stop caused by SIGTERM/SIGINT with no -onexit ends the
    #	process once no other pool of it is still running.
    method CheckStopped {} {
	if {$state ne "stopping" || [dict size $workers]} {
	    return
	}
	my CloseServer
	set state stopped
	my Log info "pool on port $port stopped; served $requests connections"
	my Finalize
	set onexit [dict get $cfg -onexit]
	if {[llength $onexit]} {
	    if {[catch {uplevel #0 [list {*}$onexit [self]]} err]} {
		my Log error "-onexit failed: $err"
	    }
	} elseif {$stopWhy in {SIGTERM SIGINT}} {
	    foreach pool $::socketserver::prefork::pools {
		if {![catch {$pool info} i] && [dict get $i state] ne "stopped"} {
		    return
		}
	    }
	    ::exit 0
	}
    }

    method Finalize {} {
	my CancelTimers
	UnregisterSignals [self]
	if {$ctlTemp && $closed} {
	    catch {file delete $ctlPath}	;# close removes it; if not...
	}
	set i [lsearch -exact $::socketserver::prefork::pools [self]]
	if {$i >= 0} {
	    set ::socketserver::prefork::pools \
		    [lreplace $::socketserver::prefork::pools $i $i]
	}
    }

    method Signal {sig} {
	if {[pid] != $owner} {
	    return
	}
	switch -- $sig {
	    SIGTERM - SIGINT {
		if {$state eq "running"} {
		    my Log info "$sig: graceful stop (again: hard stop)"
		    set ms $::socketserver::prefork::signalStopMs
		    my Stop 1 [expr {$ms % 1000 ? $ms / 1000.0 : $ms / 1000}] $sig
		} elseif {$state eq "stopping"} {
		    my Log info "$sig again: hard stop"
		    my Stop 0 0 $sig
		}
	    }
	    SIGHUP {
		if {$state eq "running"} {
		    incr generation
		    my Log info "SIGHUP: rolling restart, generation $generation"
		    my Balance
		}
	    }
	    SIGTTIN {
		if {$state eq "running"} {
		    my workers [expr {$target + 1}]
		}
	    }
	    SIGTTOU {
		if {$state eq "running" && $target > 1} {
		    my workers [expr {$target - 1}]
		}
	    }
	    SIGUSR1 {
		# "Reopen the logs" to gunicorn, nginx and Unicorn: the pool
		# keeps no log file (-log writes where it chooses), so it
		# only says so, through -log, which may reopen its own.
		my Log info "SIGUSR1: reopen logs (the pool keeps none open)"
	    }
	}
    }
}

}

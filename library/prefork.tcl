# prefork.tcl --
#
#	::socketserver::prefork: a supervised pool of worker processes
#	sharing one socketserver port, as gunicorn, Unicorn and Node's cluster
#	module give their users. Workers are forked (Tclx: fork, wait, kill,
#	signal; loaded when the first such pool is created, not when the
#	package is) or, with -spawn (the default where there is no fork,
#	Windows, and on Tcl 9, whose notifier a forked child shares with its
#	parent: doc/design-notes.md), started as new tclsh processes that
#	join the server through its control socket; spawn mode needs no Tclx.
#
#	    set pool [::socketserver::prefork -port 8080 -workers 4 \
#		    -handler handle ?-init script? ?-maxrequests N? \
#		    ?-concurrency N? ?-timeout seconds? ?-onexit cmd? ?-log cmd? \
#		    ?-spawn bool? ?-tclsh path? ?-control path? ...]
#	    $pool workers ?n?
#	    $pool info
#	    $pool stop ?-graceful bool? ?-timeout seconds?
#	    $pool destroy
#
#	The pool's process (the supervisor) owns the server, or takes one
#	that already listens on -port in this process, and never serves a
#	connection itself. Each worker is a fork of it, or a fresh tclsh: it
#	starts with an empty event loop, runs -init once at global level,
#	then takes one connection at a time through ::socketserver::socket
#	client (-port in a fork, -connect CONTROLPATH when spawned).
#
#	Spawn mode. The supervisor starts `tclsh` with a pipe on its stdin
#	and stdout (open |... r+), writes the bootstrap below, which tclsh
#	reads and evaluates as its first command, then one line: the
#	worker's configuration (the package's directory and auto_path, the
#	version, the control socket's path, -handler, -init, -maxrequests,
#	the tunables, argv0 and argv). The bootstrap loads the package and
#	calls SpawnedWorker, which runs the same worker code as a fork: the
#	status lines below go to the worker's stdout, the control lines come
#	on its stdin. Anything else the worker writes to stdout goes to its
#	stderr, which is the supervisor's. A worker is reaped by closing its
#	channel (blocking: the close returns the exit status), once its
#	stdout has reached end of file and, on Linux, /proc says it is a
#	zombie; killed with `kill -KILL` (Unix) or `taskkill /F` (Windows).
#
#	Supervisor and worker talk through two pipes per worker (spawn mode:
#	the worker's stdout and stdin):
#	  - status, worker to supervisor, one line per event:
#		ready		-init ran, the worker is armed for the first time
#		busy		a connection was handed over, the handler runs
#		done N		the handler returned; N connections so far
#		hold K T N	-concurrency: K channels open, the oldest since
#				T (clock milliseconds; 0 when K is 0), N closed
#				so far
#		retiring WHY ?N?  it takes no more connections and will exit
#				(-concurrency: after taking N)
#		log LEVEL TEXT	a log line, passed to the pool's -log
#	    Its end of file tells the supervisor at once that a worker died;
#	    a periodic `wait -nohang` on every worker pid is the backstop
#	    (spawn mode: a look at /proc/PID/stat, on Linux).
#	  - control, supervisor to worker:
#		retire	finish the connection in hand, take no more, exit.
#			Only sent while the server still listens, so a
#			connection already on its way to the worker is re-sent
#			to another worker by the dispatcher when it exits.
#		drain	the listener has been closed: finish the connection in
#			hand and whatever the dispatcher had already queued to
#			this worker, and exit when the server's channel closes.
#	    Its end of file means the supervisor is gone: the worker retires.
#	SIGKILL ends a worker at once (hard stop, -timeout).
#	Both ends read and write these lines in utf-8, with lf line ends.
#
#	Signals (with Tclx only: a spawn-mode pool without it takes no
#	signal, and its workers keep the default dispositions). Tcl 8.6
#	runs a Tclx trap inside the signal handler of whichever thread the
#	kernel picks, and Tcl_AsyncMark there takes Tcl's notifier mutex:
#	if that thread already holds it, the process deadlocks (Tcl ticket
#	f4f44174). So workers trap no signal at all (they ignore SIGINT
#	SIGTERM SIGHUP SIGTTIN SIGTTOU SIGUSR1, which reach them with their
#	process group, e.g. Ctrl-C or systemd), and the supervisor keeps those
#	signals blocked in its main thread and takes them every 100 ms by
#	unblocking them for an instant, from a timer, when the main thread
#	holds no Tcl lock. The dispatcher thread blocks every signal, and
#	Tcl's notifier thread, started at the first event loop wait,
#	inherits the main thread's mask: create the pool before the process
#	first enters the event loop and no other thread can take these
#	signals. Spawned workers inherit the blocked mask; they load Tclx to
#	ignore the six signals, as forked ones do. SIGTERM and SIGINT are
#	not left to the timer where ::socketserver::watchstop exists (Unix):
#	its thread waits for them, so that a stop acts even while this
#	interp is busy; the stop runs from the event loop, and if the
#	process is still alive signalStopMs + 1 s later, the thread ends it.
#
#	When a request is finished: one-shot (the default), when the handler
#	returns. A handler that keeps the channel open and answers later
#	from fileevents is counted then (for -maxrequests and `info served`),
#	and the worker takes its next connection at once; -timeout measures
#	only the time spent inside the handler. With -concurrency N (for
#	such event-driven handlers) the worker arms once with `client
#	-concurrency N` and holds up to N connections; each counts until its
#	channel is closed (::socketserver::onclose): `info served` counts
#	closed ones, -maxrequests N stops the worker taking more after N
#	(`client -concurrency 0`) and retires it once they are all closed,
#	and -timeout kills a worker whose oldest open connection is older.
#	A worker that is asked to exit still waits until every channel it
#	handed to the handler is closed (the supervisor's stop -timeout
#	bounds that wait).
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
    variable seq 0		;# Pool command names: ::socketserver::poolN.
    variable pools {}		;# Live pool objects of this process.
    variable signalPools {}	;# Those that answer the process's signals.
    variable savedSignals {}	;# Dispositions before the first of them.
    variable pollId {}		;# PollSignals timer.
    variable supervisorSignals {SIGTERM SIGINT SIGHUP SIGTTIN SIGTTOU SIGUSR1}

    # Tunables, in milliseconds.
    variable tickMs 200		;# Reaping, -timeout and backoff checks.
    variable signalPollMs 100	;# How often blocked signals are taken.
    variable signalStopMs 30000	;# A SIGTERM/SIGINT stop's -timeout; the
				;# process ends this long after it anyway.
    variable graceMs 100	;# A retiring idle worker lingers this long.
    variable drainFallbackMs 1000 ;# "drain" while the server still listens.
    variable quickMs 1000	;# Dying younger than this, unasked: a failure.
    variable backoffMs 100	;# First delay after a failure; doubles...
    variable backoffMaxMs 10000	;# ... up to this.

    # Spawn mode: the directory of the package's pkgIndex.tcl (this
    # file is library/prefork.tcl under it), put first on a spawned
    # worker's auto_path so that it loads this very package; and whether
    # /proc tells a zombie (Linux; under wine, /proc/self/stat is the
    # host's, through drive Z:, hence the platform).
    variable libdir [file normalize [file dirname [file dirname \
	    [info script]]]]
    variable procfs [expr {$::tcl_platform(platform) eq "unix"
	    && [file readable /proc/self/stat]}]

    # In a worker process: set by the pool, readable by handlers.
    # stopping becomes 1 when the worker will take no more connections;
    # served counts the connections whose handler has returned.
    variable stopping 0
    variable served 0
    variable W			;# The worker's own state (array).

    # Spawn mode: the first command a spawned tclsh reads on its stdin
    # and evaluates; the line after it is the worker's configuration
    # (EncodeLine). It loads this package and becomes a worker, or says
    # why it could not on its stdout, a status line, and exits 4.
    variable bootstrap {apply {{} {
	if {[catch {
	    chan configure stdin -blocking 1 -translation lf
	    if {[gets stdin line] < 0} {
		exit 4
	    }
	    set config [subst -nocommands -novariables $line]
	    set path {}
	    foreach dir [concat [dict get $config path] $::auto_path] {
		if {$dir ni $path} {
		    lappend path $dir
		}
	    }
	    set ::auto_path $path
	    foreach dir [lreverse [dict get $config tm]] {
		catch {::tcl::tm::path add $dir}
	    }
	    set version [dict get $config version]
	    if {$version eq ""} {
		package require socketserver
	    } else {
		package require -exact socketserver $version
	    }
	    ::socketserver::prefork::SpawnedWorker $config
	} msg opts]} {
	    catch {set ::socketserver::prefork::W(raw) 1}  ;# Past StdoutGuard.
	    catch {
		chan configure stdout -translation lf -encoding utf-8
		puts stdout [list log error [string map \
			{\\ \\\\ \n \\n \r \\r} \
			"can't become a worker: [dict get $opts -errorinfo]"]]
		flush stdout
	    }
	}
	exit 4		;# Never back to tclsh, which would read stdin.
    }}}
}

# ::socketserver::prefork --
#	Creates a pool: checks the options, opens (or takes) the server and
#	starts the workers. Returns the pool's command name.

proc ::socketserver::prefork {args} {
    set windows [expr {$::tcl_platform(platform) eq "windows"}]
    # Tcl 9's epoll (kqueue) notifier does not survive a fork without
    # exec: the child shares, or loses, its parent's event set.
    set tcl9 [package vsatisfies [package provide Tcl] 9-]
    set opts [dict create -backlog "" -concurrency 0 -control "" \
	    -handler "" -init "" \
	    -log "" -maxrequests 0 -myaddr "" -onexit "" -port 0 -signals "" \
	    -spawn [expr {$windows || $tcl9}] -tclsh "" -timeout 0 -workers 2]
    set opts [prefork::ParseOptions $opts $args]
    dict with opts {
	prefork::CheckInt -port ${-port} 0
	prefork::CheckInt workers ${-workers} 1
	prefork::CheckInt maxrequests ${-maxrequests} 0
	prefork::CheckInt concurrency ${-concurrency} 0
	prefork::CheckNumber timeout ${-timeout}
	if {${-backlog} ne ""} {
	    prefork::CheckInt backlog ${-backlog} 1
	}
	foreach flag {-signals -spawn} {
	    if {[set $flag] ne "" && ![string is boolean -strict [set $flag]]} {
		return -code error -errorcode {TCL VALUE NUMBER} \
			"expected boolean value but got \"[set $flag]\""
	    }
	}
	foreach list {-handler -log -onexit} {
	    llength [set $list]	;# A malformed list fails here.
	}
	if {[llength ${-handler}] == 0} {
	    return -code error -errorcode {TCL ARGUMENT MISSING} \
		    "missing required option -handler"
	}
	set -spawn [expr {${-spawn} eq "" ? $windows || $tcl9
		: [string is true ${-spawn}]}]
	if {${-spawn}} {
	    if {${-tclsh} eq ""} {
		set -tclsh [info nameofexecutable]
	    }
	    if {[auto_execok ${-tclsh}] eq ""} {
		return -code error -errorcode \
			{POSIX ENOENT {no such file or directory}} \
			"couldn't execute \"${-tclsh}\": no such file or directory"
	    }
	    if {${-signals} eq ""} {
		# Signals need Tclx; spawn mode does not.
		set -signals [expr {!$windows
			&& ![catch {package require Tclx}]}]
	    }
	} elseif {$windows} {
	    return -code error -errorcode {SOCKETSERVER POOL NOFORK} \
		    "can't fork workers on this platform: use -spawn 1"
	} elseif {$tcl9} {
	    return -code error -errorcode {SOCKETSERVER POOL NOFORK} \
		    "can't fork workers under Tcl 9, whose notifier a forked\
		    child shares with its parent: use -spawn 1"
	} elseif {${-signals} eq ""} {
	    set -signals 1
	}
	set -signals [string is true ${-signals}]
	if {!${-spawn} || ${-signals}} {
	    package require Tclx
	}
    }
    variable prefork::seq
    while {[llength [info commands [set name \
	    ::socketserver::pool[incr seq]]]]} {}
    prefork::Pool create $name $opts
    return $name
}

namespace eval ::socketserver::prefork {

# ParseOptions --
#	Reads "-option value ..." against a dict of defaults; options may be
#	abbreviated, as with Tcl's own commands. Returns the merged dict.

proc ParseOptions {defaults argList} {
    set names [lsort [dict keys $defaults]]
    set n [llength $argList]
    for {set i 0} {$i < $n} {incr i 2} {
	set opt [tcl::prefix match -message option $names [lindex $argList $i]]
	if {$i + 1 >= $n} {
	    return -code error -errorcode {TCL ARGUMENT MISSING} \
		    "no argument given for $opt option"
	}
	dict set defaults $opt [lindex $argList $i+1]
    }
    return $defaults
}

# CheckInt, CheckNumber --
#	Option checks, worded as the core's own (`bad backlog "0": must be a
#	positive integer`). Return nothing or raise the error.

proc CheckInt {what value min} {
    if {![string is entier -strict $value]} {
	return -code error -errorcode {TCL VALUE INTEGER} \
		"expected integer but got \"$value\""
    }
    if {$what eq "-port"} {
	if {$value < 0 || $value > 65535} {
	    return -code error -errorcode {TCL VALUE PORT} \
		    "couldn't open socket: port number too\
		    [expr {$value < 0 ? "low" : "high"}]"
	}
    } elseif {$value < $min} {
	return -code error -errorcode [list TCL VALUE [string toupper $what]] \
		"bad $what \"$value\": must be a\
		[expr {$min ? "positive" : "non-negative"}] integer"
    }
}

proc CheckNumber {what value} {
    if {![string is double -strict $value]} {
	return -code error -errorcode {TCL VALUE NUMBER} \
		"expected floating-point number but got \"$value\""
    }
    if {$value < 0} {
	return -code error -errorcode [list TCL VALUE [string toupper $what]] \
		"bad $what \"$value\": must be a non-negative number"
    }
}

# DefaultLog --
#	The default -log: one timestamped line on stderr, with the process.

proc DefaultLog {level message} {
    set ms [clock milliseconds]
    set stamp [clock format [expr {$ms / 1000}] -format %Y-%m-%dT%H:%M:%S]
    catch {
	puts stderr [format "%s.%03d socketserver\[%d\] %s: %s" \
		$stamp [expr {$ms % 1000}] [pid] $level $message]
    }
}

# Log --
#	Calls a -log command prefix with level (info, warning or error) and
#	message; a failing or missing prefix falls back to DefaultLog.

proc Log {prefix level message} {
    if {[llength $prefix]} {
	if {![catch {uplevel #0 [list {*}$prefix $level $message]} err]} {
	    return
	}
	DefaultLog error "-log command failed: $err"
    }
    DefaultLog $level $message
}

# Encode, Decode --
#	A log message on one line of the status pipe.

proc Encode {text} {
    string map {\\ \\\\ \n \\n \r \\r} $text
}

proc Decode {text} {
    subst -nocommands -novariables $text
}

# EncodeLine --
#	Any value on one line of plain ASCII (Decode reads it back): what a
#	spawned worker reads before it has set its channel's encoding.

proc EncodeLine {text} {
    set text [Encode $text]
    if {![regexp {[^\t\x20-\x7e]} $text]} {
	return $text
    }
    set out ""
    foreach c [split $text ""] {
	scan $c %c code
	if {($code < 0x20 && $c ne "\t") || $code > 0x7e} {
	    append out [format \\u%04x $code]
	} else {
	    append out $c
	}
    }
    return $out
}

# ProcessExited --
#	Spawn mode: whether a spawned worker whose channel is still open has
#	exited, so that a blocking close of the channel reaps it at once.
#	With /proc (Linux): the process is a zombie, or gone. Elsewhere:
#	its stdout has reached end of file (eof), which only its exit does.

proc ProcessExited {pid eof} {
    variable procfs
    if {!$procfs} {
	return $eof
    }
    if {[catch {
	set f [open /proc/$pid/stat]
	set stat [read $f]
	close $f
    }]} {
	return 1		;# Reaped by someone else: close won't wait.
    }
    set state [string index [string trimleft \
	    [string range $stat [string last ")" $stat]+1 end]] 0]
    expr {$state in {Z X x}}
}

# KillProcesses --
#	Spawn mode: SIGKILL (Unix) or TerminateProcess (Windows) without
#	Tclx. Processes already gone are ignored.

proc KillProcesses {pids} {
    if {![llength $pids]} {
	return
    }
    if {$::tcl_platform(platform) eq "windows"} {
	foreach pid $pids {
	    catch {exec taskkill /F /PID $pid}
	}
    } else {
	catch {exec kill -KILL {*}$pids}
    }
}

# TempControlPath --
#	A fresh path for the control socket of a spawn-mode pool, in the
#	temporary directory. Kept short on Unix, where a socket's path has
#	at most 107 bytes.

proc TempControlPath {} {
    global env tcl_platform
    if {$tcl_platform(platform) eq "windows"} {
	set dirs {}
	foreach var {TEMP TMP} {
	    if {[info exists env($var)]} {
		lappend dirs $env($var)
	    }
	}
	lappend dirs [pwd]
    } else {
	set dirs [expr {[info exists env(TMPDIR)] ? [list $env(TMPDIR)] : {}}]
	lappend dirs /tmp
    }
    foreach dir $dirs {
	set dir [file normalize $dir]
	if {[file isdirectory $dir] && [file writable $dir]
		&& ($tcl_platform(platform) eq "windows"
		|| [string length $dir] <= 80)} {
	    break
	}
    }
    while 1 {
	set path [file join $dir [format ssprefork-%d-%06x [pid] \
		[expr {int(rand() * 0x1000000)}]]]
	if {![file exists $path]} {
	    return $path
	}
    }
}

# RegisterSignals, UnregisterSignals, PollSignals, SupervisorSignal,
# OnSignal --
#	SIGTERM SIGINT SIGHUP SIGTTIN SIGTTOU SIGUSR1 for the pools that take
#	signals. While any such pool lives, the signals are trapped but kept
#	blocked in the main thread; PollSignals, a timer, unblocks them for
#	an instant so a pending one is delivered right there, in the main
#	thread, outside any Tcl lock (see the file's header). The trap only
#	schedules OnSignal, which asks each pool to act.

proc RegisterSignals {pool} {
    variable signalPools
    variable savedSignals
    variable supervisorSignals
    variable signalStopMs
    if {![llength $signalPools]} {
	set savedSignals [signal get $supervisorSignals]
	signal block $supervisorSignals
	signal -restart trap [TrappedSignals] \
		{::socketserver::prefork::SupervisorSignal %S}
	if {[llength [info commands ::socketserver::watchstop]]} {
	    # Taken by a thread, so that they act even while this
	    # interp is busy: see the file's header.
	    ::socketserver::watchstop [expr {$signalStopMs + 1000}] \
		    ::socketserver::prefork::OnSignal
	}
	PollSignals
    }
    lappend signalPools $pool
}

# TrappedSignals --
#	The signals the Tclx trap takes: all of the pool's, but SIGTERM and
#	SIGINT where ::socketserver::watchstop takes those.

proc TrappedSignals {} {
    variable supervisorSignals
    if {![llength [info commands ::socketserver::watchstop]]} {
	return $supervisorSignals
    }
    lmap sig $supervisorSignals {
	if {$sig in {SIGTERM SIGINT}} continue
	set sig
    }
}

proc UnregisterSignals {pool} {
    variable signalPools
    variable savedSignals
    variable supervisorSignals
    variable pollId
    set i [lsearch -exact $signalPools $pool]
    if {$i < 0} {
	return
    }
    set signalPools [lreplace $signalPools $i $i]
    if {![llength $signalPools]} {
	after cancel $pollId
	catch {::socketserver::watchstop off}
	catch {signal set $savedSignals}
	catch {signal unblock $supervisorSignals}
	set savedSignals {}
    }
}

# OtherThreadsTakeSignals --
#	Linux: 1 if a thread other than the main one has one of the pool's
#	signals unblocked (Tcl's notifier, when the event loop ran before
#	the pool was created), 0 otherwise or where it cannot tell.

proc OtherThreadsTakeSignals {} {
    # The Tclx trap's signals (the watchstop thread waits for the others,
    # unblocking them while it waits), by their numbers on Linux.
    set numbers {SIGHUP 1 SIGINT 2 SIGUSR1 10 SIGTERM 15 SIGTTIN 21 SIGTTOU 22}
    set mask 0
    foreach sig [TrappedSignals] {
	set mask [expr {$mask | (1 << ([dict get $numbers $sig] - 1))}]
    }
    foreach task [glob -nocomplain -directory /proc/self/task *] {
	if {[file tail $task] == [pid] || [catch {
	    set f [open $task/status]
	    set status [read $f]
	    close $f
	}]} {
	    continue
	}
	if {[regexp -line {^SigBlk:\s*([0-9a-fA-F]+)} $status - blocked]
		&& ([scan $blocked %llx] & $mask) != $mask} {
	    return 1
	}
    }
    return 0
}

proc PollSignals {} {
    variable pollId
    variable signalPollMs
    set trapped [TrappedSignals]
    signal unblock $trapped
    signal block $trapped
    set pollId [after $signalPollMs ::socketserver::prefork::PollSignals]
}

proc SupervisorSignal {sig} {
    after 0 [list ::socketserver::prefork::OnSignal $sig]
}

proc OnSignal {sig} {
    variable signalPools
    foreach pool $signalPools {
	catch {[info object namespace $pool]::my Signal $sig}
    }
}

# ---------------------------------------------------------------------
# The supervisor: one object per pool.
# ---------------------------------------------------------------------

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

# ---------------------------------------------------------------------
# The worker side: runs in each forked child or spawned tclsh, never in
# the supervisor.
# ---------------------------------------------------------------------

# BecomeWorker --
#	Turns a freshly forked child into a worker: forgets the parent's
#	pools, empties the event loop (timers and fileevents inherited from
#	the pool's process are not the worker's; the channels stay open),
#	sets the worker's signals, and runs it (RunWorker). Never returns.

proc BecomeWorker {statusPipe controlPipe config} {
    variable pools
    variable signalPools
    variable savedSignals
    variable supervisorSignals

    foreach pool $pools {
	catch {[info object namespace $pool]::my Forget}
    }
    set pools {}
    set signalPools {}
    set savedSignals {}
    foreach id [after info] {
	after cancel $id
    }
    foreach chan [chan names] {
	catch {chan event $chan readable {}}
	catch {chan event $chan writable {}}
    }
    signal ignore $supervisorSignals
    signal unblock $supervisorSignals
    RunWorker $statusPipe $controlPipe $config
}

# SpawnedWorker --
#	Called by the bootstrap of a spawned tclsh, once the package is
#	loaded: takes the supervisor's tunables, argv0 and argv, ignores the
#	pool's signals when the supervisor takes them (Tclx), and runs the
#	worker with its stdout as the status pipe and its stdin as the
#	control pipe. Never returns.

proc SpawnedWorker {config} {
    variable supervisorSignals
    foreach var {graceMs drainFallbackMs} {
	variable $var [dict get $config $var]
    }
    set ::argv0 [dict get $config argv0]
    set ::argv [dict get $config argv]
    set ::argc [llength $::argv]
    if {[dict get $config signals] && ![catch {package require Tclx}]} {
	signal ignore $supervisorSignals
	signal unblock $supervisorSignals
    }
    RunWorker stdout stdin $config
}

# RunWorker --
#	The worker proper: runs -init, arms, and serves until asked to go.
#	Never returns. When spawned, the status pipe is stdout: StdoutGuard
#	sends whatever else is written to it to stderr.

proc RunWorker {statusPipe controlPipe config} {
    variable W
    variable stopping 0
    variable served 0

    array unset W
    array set W {
	armed 0 inHandler 0 finishing 0 drain 0 orphan 0 open {} raw 0
	held {} taken 0
    }
    set W(pipe) $statusPipe
    set W(control) $controlPipe
    dict with config {
	set W(target) $target
	set W(handler) $handler
	set W(max) $maxrequests
	set W(conc) $concurrency
	set W(log) $log
	set W(guard) $spawned
    }
    chan configure $statusPipe -blocking 1 -buffering line -translation lf \
	    -encoding utf-8
    chan configure $controlPipe -blocking 0 -translation lf -encoding utf-8
    if {$W(guard)} {
	chan push $statusPipe ::socketserver::prefork::StdoutGuard
    }
    chan event $controlPipe readable ::socketserver::prefork::WorkerControl
    interp bgerror {} [list ::socketserver::prefork::WorkerBgerror \
	    [interp bgerror {}]]

    if {[catch {uplevel #0 [dict get $config init]} msg opts]} {
	WorkerLog error "-init failed: [dict get $opts -errorinfo]"
	::exit 3
    }
    set cmd [lindex $W(handler) 0]
    if {[uplevel #0 [list namespace which -command $cmd]] eq ""} {
	WorkerLog error "-handler: invalid command name \"$cmd\""
	::exit 4
    }
    if {$W(guard) && [llength $W(log)] && [uplevel #0 [list \
	    namespace which -command [lindex $W(log) 0]]] eq ""} {
	set W(log) ""	;# Not defined by -init: DefaultLog.
    }
    WorkerControl		;# Asked to go during -init: exits here.
    if {![Arm]} {
	::exit 4
    }
    Report ready
    vwait ::socketserver::prefork::W(forever)
    ::exit 0
}

# StdoutGuard --
#	Spawn mode: a channel transform on stdout, the status pipe. Report
#	writes through it (W(raw) set); anything else written to stdout, by
#	-init or a handler, goes to stderr instead of confusing the
#	supervisor.

proc StdoutGuard {cmd chan args} {
    variable W
    switch -- $cmd {
	initialize {
	    return {initialize finalize write}
	}
	write {
	    set data [lindex $args 0]
	    if {[info exists W(raw)] && $W(raw)} {
		return $data
	    }
	    catch {
		puts -nonewline stderr [encoding convertfrom utf-8 $data]
		flush stderr
	    }
	    return ""
	}
    }
}

# Serve --
#	The handler the worker arms with: calls the user's handler at global
#	level, counts the connection when it returns, and re-arms (or
#	retires when -maxrequests is reached or a stop was asked).

proc Serve {chan addr port} {
    variable W
    if {$W(conc) > 0} {
	tailcall ServeHeld $chan $addr $port
    }
    variable served
    variable stopping
    set W(armed) 0
    set W(inHandler) 1
    Report busy
    set code [catch {uplevel #0 [list {*}$W(handler) $chan $addr $port]} \
	    msg opts]
    set W(inHandler) 0
    if {$code == 1} {
	WorkerLog error "-handler failed: [dict get $opts -errorinfo]"
	if {$chan in [chan names]} {
	    catch {close $chan}
	}
    }
    incr served
    if {$chan in [chan names]} {
	lappend W(open) $chan
    }
    Report "done $served"
    if {$W(finishing)} {
	return
    }
    if {$stopping} {
	Finish [expr {$W(drain) ? "stop" : "retire"}]
    } elseif {$W(max) > 0 && $served >= $W(max)} {
	Finish maxrequests
    } elseif {![Arm]} {
	Finish "lost the server"
    }
}

# ServeHeld, Closed, ReportHeld --
#	-concurrency: the worker stays armed. Each connection is counted
#	from the hand-off until its channel closes, wherever it closes
#	(W(held): channel -> when it was handed over); after -maxrequests
#	of them the worker takes no more and retires once all are closed.

proc ServeHeld {chan addr port} {
    variable W
    variable stopping
    dict set W(held) $chan [clock milliseconds]
    incr W(taken)
    ::socketserver::onclose $chan [list ::socketserver::prefork::Closed $chan]
    ReportHeld
    set W(inHandler) 1
    set code [catch {uplevel #0 [list {*}$W(handler) $chan $addr $port]} \
	    msg opts]
    set W(inHandler) 0
    if {$code == 1} {
	WorkerLog error "-handler failed: [dict get $opts -errorinfo]"
	catch {close $chan}
    }
    if {$W(finishing)} {
	return
    }
    if {$stopping} {
	Finish [expr {$W(drain) ? "stop" : "retire"}]
    } elseif {$W(max) > 0 && $W(taken) >= $W(max)} {
	Finish maxrequests
    }
}

proc Closed {chan} {
    variable W
    variable served
    dict unset W(held) $chan
    incr served
    ReportHeld
}

proc ReportHeld {} {
    variable W
    variable served
    set since 0
    if {[dict size $W(held)]} {
	set since [tcl::mathfunc::min {*}[dict values $W(held)]]
    }
    Report [list hold [dict size $W(held)] $since $served]
}

proc Arm {} {
    variable W
    variable stopping
    set limit [expr {$W(conc) > 0 ? [list -concurrency $W(conc)] : {}}]
    if {[catch {::socketserver::socket client {*}$W(target) {*}$limit \
	    ::socketserver::prefork::Serve} msg]} {
	if {!$stopping} {
	    WorkerLog error "can't take connections: $msg"
	}
	return 0
    }
    set W(armed) 1
    return 1
}

# WorkerControl, WorkerStop --
#	Lines from the supervisor ("retire", "drain"); end of file means it
#	is gone. Acted on from the event loop, never inside a handler.

proc WorkerControl {} {
    variable W
    while {![catch {gets $W(control) line} n] && $n >= 0} {
	if {$line in {retire drain}} {
	    WorkerStop $line
	}
    }
    if {[catch {eof $W(control)} eof] || $eof} {
	catch {close $W(control)}
	set W(orphan) 1
	WorkerStop orphan
    }
}

proc WorkerStop {how} {
    variable W
    variable stopping
    set stopping 1
    if {$how eq "drain"} {
	set W(drain) 1
    }
    if {$W(inHandler) || $W(finishing)} {
	return			;# Serve, or Finish, takes it from here.
    }
    if {!$W(armed)} {
	Finish [expr {$W(drain) ? "stop" : "retire"}]
    } elseif {$W(drain)} {
	# The listener is closed: what the dispatcher had sent comes
	# first, then end of file (SOCKETSERVER LOST, in WorkerBgerror).
	after $::socketserver::prefork::drainFallbackMs \
		::socketserver::prefork::LeaveIdle
    } else {
	# Let a connection already on its way arrive; had it not, the
	# dispatcher re-sends it to another worker when this one exits.
	after $::socketserver::prefork::graceMs \
		::socketserver::prefork::LeaveIdle
    }
}

proc LeaveIdle {} {
    variable W
    if {!$W(inHandler) && !$W(finishing)} {
	Finish [expr {$W(drain) ? "stop" : "retire"}]
    }
}

# WorkerBgerror --
#	The worker's background error handler. The server's channel closing
#	under an armed worker (SOCKETSERVER LOST) ends the worker quietly;
#	anything else goes to the previous handler, or to the log.

proc WorkerBgerror {previous msg opts} {
    variable W
    if {[lrange [dict get $opts -errorcode] 0 1] eq {SOCKETSERVER LOST}} {
	set W(armed) 0
	if {!$W(inHandler)} {
	    Finish [expr {$W(drain) ? "stop" : "lost the server"}]
	}
	return
    }
    if {$previous eq "::tcl::Bgerror" && ![llength [info commands ::bgerror]]} {
	WorkerLog error "background error: [dict get $opts -errorinfo]"
    } else {
	uplevel #0 [list {*}$previous $msg $opts]
    }
}

# Finish --
#	The worker takes no more connections: it says so, waits until the
#	channels its handler kept open are closed, and exits.

proc Finish {why} {
    variable W
    variable stopping
    if {$W(finishing)} {
	return
    }
    set W(finishing) 1
    set stopping 1
    if {$W(conc) > 0 && $W(armed)} {
	# Take no more; what is already on its way is still served.
	catch {::socketserver::socket client {*}$W(target) -concurrency 0 \
		::socketserver::prefork::Serve}
    }
    Report [list retiring $why {*}[expr {$W(conc) > 0 ? $W(taken) : {}}]]
    WaitAndExit
}

proc WaitAndExit {} {
    variable W
    set open {}
    foreach chan $W(open) {
	if {$chan in [chan names]} {
	    lappend open $chan
	}
    }
    set W(open) $open
    if {![llength $open] && ![dict size $W(held)] && !$W(inHandler)} {
	::exit 0
    }
    after 20 ::socketserver::prefork::WaitAndExit
}

# Report, WorkerLog --
#	One line to the supervisor. When it is gone (the pipe is broken) the
#	worker finishes what it holds and exits; logs then go to -log here.

proc Report {line} {
    variable W
    if {$W(pipe) eq ""} {
	return 0
    }
    if {$W(guard)} {
	catch {flush $W(pipe)}	;# What the user wrote: to stderr.
	set W(raw) 1
    }
    set failed [catch {
	puts $W(pipe) $line
	flush $W(pipe)
    }]
    set W(raw) 0
    if {$failed} {
	if {!$W(guard)} {
	    catch {close $W(pipe)}	;# Never close stdout: see StdoutGuard.
	}
	set W(pipe) ""
	after 0 {::socketserver::prefork::WorkerStop orphan}
	return 0
    }
    return 1
}

proc WorkerLog {level message} {
    variable W
    if {![Report [list log $level [Encode $message]]]} {
	Log $W(log) $level $message
    }
}

}
